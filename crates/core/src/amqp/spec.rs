//! `[source]` and `[sink]` of a pipeline: the queue `consume` reads and the
//! exchange alerts are published to, with their defaults, beside the code
//! that uses them. `config/` assembles them into the `Plan`.

use serde::Deserialize;

use crate::spec::{ConfigError, Located, timeout_us, unspanned};

/// `[sink]`: where alerts and reports go besides `--alerts`/`--reports`.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkSpec {
    #[serde(rename = "type")]
    pub kind: toml::Spanned<String>,
    pub exchange: toml::Spanned<String>,
}

impl Default for SinkSpec {
    fn default() -> Self {
        SinkSpec {
            kind: unspanned("none".into()),
            exchange: unspanned(super::DEFAULT_EXCHANGE.into()),
        }
    }
}

/// The validated `[sink]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkPlan {
    /// `type = "amqp"`: publishing is required (a broker URI must be given).
    pub amqp: bool,
    /// The topic exchange (the CLI's `--exchange` wins).
    pub exchange: String,
}

/// `[source]`: where `dnsmonitor consume` reads packets (the broker URI
/// comes from `--amqp`, `--amqp-file` or `DNSMONITOR_AMQP_URI`, never from
/// the pipeline file). `replay` and `live` ignore it.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceSpec {
    #[serde(rename = "type")]
    /// Retired: `consume` always reads a queue and `replay`/`live` never
    /// did, so the key chose nothing. Still read, so old files load, and
    /// reported as a warning (`Plan::warnings`).
    pub kind: Option<toml::Spanned<String>>,
    pub queue: toml::Spanned<String>,
    pub prefetch: toml::Spanned<u32>,
    pub idle_timeout_secs: toml::Spanned<u64>,
    pub dead_letter_exchange: toml::Spanned<String>,
    pub bind: toml::Spanned<Vec<String>>,
}

impl Default for SourceSpec {
    fn default() -> Self {
        SourceSpec {
            kind: None,
            queue: unspanned(String::new()),
            prefetch: unspanned(super::source::DEFAULT_PREFETCH as u32),
            idle_timeout_secs: unspanned(super::source::DEFAULT_IDLE_TIMEOUT.as_secs()),
            dead_letter_exchange: unspanned(String::new()),
            bind: unspanned(Vec::new()),
        }
    }
}

/// The validated `[source]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcePlan {
    /// Empty when not set.
    pub queue: String,
    pub prefetch: u16,
    pub idle_timeout_secs: u64,
    pub dead_letter_exchange: Option<String>,
    /// (exchange, routing key) pairs from `bind = ["exchange=key", ...]`.
    pub bind: Vec<(String, String)>,
}

/// Parse `exchange=routing.key` (a binding of the ingest queue).
pub fn parse_binding(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((e, k)) if !e.trim().is_empty() && !k.trim().is_empty() => {
            Ok((e.trim().to_string(), k.trim().to_string()))
        }
        _ => Err(format!(
            "`{s}` is not EXCHANGE=ROUTING_KEY (e.g. dnsmonitor.packets=sensors.#)"
        )),
    }
}

/// `[source]`: the queue `consume` reads and its bindings.
pub fn source_table(
    so: &SourceSpec,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigError>,
) -> SourcePlan {
    if let Some(kind) = &so.kind {
        match kind.get_ref().as_str() {
            "amqp" | "capture" => warnings.push(loc.error(
                kind.span(),
                "source.type",
                "no longer used (remove it): `consume` reads the queue of [source], `replay` and `live` ignore [source]",
            )),
            other => errors.push(loc.error(
                kind.span(),
                "source.type",
                format!("`{other}` is not a source type (the key is retired: remove it)"),
            )),
        }
    }
    let prefetch = *so.prefetch.get_ref();
    if prefetch == 0 || prefetch > u16::MAX as u32 {
        errors.push(loc.error(
            so.prefetch.span(),
            "source.prefetch",
            format!("must be between 1 and {}", u16::MAX),
        ));
    }
    timeout_us(
        &so.idle_timeout_secs,
        "source.idle_timeout_secs",
        loc,
        errors,
    );
    if *so.idle_timeout_secs.get_ref() == 0 {
        errors.push(loc.error(
            so.idle_timeout_secs.span(),
            "source.idle_timeout_secs",
            "must be at least 1",
        ));
    }
    let mut bind = Vec::new();
    for b in so.bind.get_ref() {
        match parse_binding(b) {
            Ok(pair) => bind.push(pair),
            Err(m) => errors.push(loc.error(so.bind.span(), "source.bind", m)),
        }
    }
    let dlx = so.dead_letter_exchange.get_ref().trim();
    SourcePlan {
        queue: so.queue.get_ref().trim().to_string(),
        prefetch: prefetch.clamp(1, u16::MAX as u32) as u16,
        idle_timeout_secs: *so.idle_timeout_secs.get_ref(),
        dead_letter_exchange: (!dlx.is_empty()).then(|| dlx.to_string()),
        bind,
    }
}

/// `[sink]`: where alerts are published.
pub fn sink_table(si: &SinkSpec, loc: &Located<'_>, errors: &mut Vec<ConfigError>) -> SinkPlan {
    let sink_amqp = match si.kind.get_ref().as_str() {
        "amqp" => true,
        "none" => false,
        other => {
            errors.push(loc.error(
                si.kind.span(),
                "sink.type",
                format!("`{other}` is not a sink type: use \"none\" or \"amqp\""),
            ));
            false
        }
    };
    if si.exchange.get_ref().trim().is_empty() {
        errors.push(loc.error(si.exchange.span(), "sink.exchange", "must not be empty"));
    }
    SinkPlan {
        amqp: sink_amqp,
        exchange: si.exchange.get_ref().trim().to_string(),
    }
}
