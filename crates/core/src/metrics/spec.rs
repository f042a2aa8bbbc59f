//! `[metrics]` of a pipeline: where `/metrics` is served, beside the
//! server. `config/` assembles it into the `Plan`.

use serde::Deserialize;

use crate::spec::{ConfigError, Located};

/// `[metrics]`: where `/metrics` is served (the CLI's `--metrics-listen` wins).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    pub listen: Option<toml::Spanned<String>>,
}

/// `[metrics]`: the listen address, if any.
pub fn metrics_table(
    m: &MetricsSpec,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<std::net::SocketAddr> {
    let l = m.listen.as_ref()?;
    match l.get_ref().parse::<std::net::SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(loc.error(
                l.span(),
                "metrics.listen",
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:9153",
                    l.get_ref()
                ),
            ));
            None
        }
    }
}
