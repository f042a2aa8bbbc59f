//! `[capture]` of a pipeline: the DNS ports and the decoder's reassembly
//! bounds, beside the decoder (defaults are `PacketConfig::default()`).
//! `config/` assembles it into the `Plan`.

use serde::Deserialize;

use super::PacketConfig;
use crate::spec::{ConfigError, Located, timeout_us, unspanned};
use crate::time::MICROS;

/// Most DNS ports a pipeline may list.
pub const MAX_DNS_PORTS: usize = 16;
/// Ceiling of the state-table sizes (`capture.max_fragment_datagrams`,
/// `capture.max_tcp_flows`; the defaults are 4096 and 65 536).
pub const MAX_TABLE_ENTRIES: usize = 1 << 24;
/// Ceiling of `capture.max_tcp_total_bytes` (64 GiB).
pub const MAX_TCP_TOTAL_BYTES: usize = 64 << 30;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSpec {
    pub dns_ports: toml::Spanned<Vec<u16>>,
    pub max_fragment_datagrams: toml::Spanned<usize>,
    pub fragment_timeout_secs: toml::Spanned<u64>,
    pub max_tcp_flows: toml::Spanned<usize>,
    pub tcp_flow_timeout_secs: toml::Spanned<u64>,
    pub max_tcp_total_bytes: toml::Spanned<usize>,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        let d = PacketConfig::default();
        CaptureSpec {
            dns_ports: unspanned(d.dns_ports),
            max_fragment_datagrams: unspanned(d.max_fragment_datagrams),
            fragment_timeout_secs: unspanned((d.fragment_timeout_us / MICROS) as u64),
            max_tcp_flows: unspanned(d.max_tcp_flows),
            tcp_flow_timeout_secs: unspanned((d.tcp_flow_timeout_us / MICROS) as u64),
            max_tcp_total_bytes: unspanned(d.max_tcp_total_bytes),
        }
    }
}

/// `[capture]`: ports and the decoder's reassembly bounds.
pub fn capture_table(
    c: &CaptureSpec,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> PacketConfig {
    let ports = c.dns_ports.get_ref();
    if ports.is_empty() || ports.len() > MAX_DNS_PORTS || ports.contains(&0) {
        errors.push(loc.error(
            c.dns_ports.span(),
            "capture.dns_ports",
            format!("must list 1 to {MAX_DNS_PORTS} ports, none of them 0"),
        ));
    }
    for (v, key) in [
        (&c.max_fragment_datagrams, "capture.max_fragment_datagrams"),
        (&c.max_tcp_flows, "capture.max_tcp_flows"),
    ] {
        if *v.get_ref() == 0 || *v.get_ref() > MAX_TABLE_ENTRIES {
            errors.push(loc.error(
                v.span(),
                key,
                format!("must be between 1 and {MAX_TABLE_ENTRIES}"),
            ));
        }
    }
    let total = *c.max_tcp_total_bytes.get_ref();
    let one_flow = PacketConfig::DEFAULT_MAX_TCP_BUFFER_BYTES;
    if !(one_flow..=MAX_TCP_TOTAL_BYTES).contains(&total) {
        errors.push(loc.error(
            c.max_tcp_total_bytes.span(),
            "capture.max_tcp_total_bytes",
            format!("must be between {one_flow} (one flow's buffer) and {MAX_TCP_TOTAL_BYTES}"),
        ));
    }
    PacketConfig {
        dns_ports: ports.clone(),
        max_fragment_datagrams: *c.max_fragment_datagrams.get_ref(),
        fragment_timeout_us: timeout_us(
            &c.fragment_timeout_secs,
            "capture.fragment_timeout_secs",
            loc,
            errors,
        ),
        max_tcp_flows: *c.max_tcp_flows.get_ref(),
        tcp_flow_timeout_us: timeout_us(
            &c.tcp_flow_timeout_secs,
            "capture.tcp_flow_timeout_secs",
            loc,
            errors,
        ),
        max_tcp_total_bytes: total.clamp(one_flow, MAX_TCP_TOTAL_BYTES),
        ..PacketConfig::default()
    }
}
