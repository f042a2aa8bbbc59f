//! `[cluster]` of a pipeline: ZooKeeper, name, size, endpoint and the
//! timeouts, with their defaults, beside the room that uses them. `config/`
//! assembles it into the `Plan`; flags override it per member.

use serde::Deserialize;

use crate::spec::{ConfigError, Located, MAX_TIMEOUT_SECS, unspanned};

/// `[cluster]`: join a cluster through ZooKeeper (`crate::cluster`); the
/// flags `--zookeeper`, `--cluster`, `--processes`, `--advertise` win.
/// Not part of the pipeline version members compare (`advertise` differs
/// per member).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSpec {
    pub zookeeper: toml::Spanned<String>,
    pub name: toml::Spanned<String>,
    pub processes: toml::Spanned<u64>,
    pub advertise: toml::Spanned<String>,
    pub connect_timeout_secs: toml::Spanned<u64>,
    pub form_timeout_secs: toml::Spanned<u64>,
    pub session_timeout_secs: toml::Spanned<u64>,
    pub ready_timeout_secs: toml::Spanned<u64>,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        use super as c;
        ClusterSpec {
            zookeeper: unspanned(String::new()),
            name: unspanned(String::new()),
            processes: unspanned(0),
            advertise: unspanned(String::new()),
            connect_timeout_secs: unspanned(c::DEFAULT_CONNECT_TIMEOUT_SECS),
            form_timeout_secs: unspanned(c::DEFAULT_FORM_TIMEOUT_SECS),
            session_timeout_secs: unspanned(c::DEFAULT_SESSION_TIMEOUT_SECS),
            ready_timeout_secs: unspanned(c::DEFAULT_READY_TIMEOUT_SECS),
        }
    }
}

/// The validated `[cluster]` (empty strings and 0: not set).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterPlan {
    pub zookeeper: Option<String>,
    pub name: Option<String>,
    pub processes: Option<usize>,
    pub advertise: Option<String>,
    pub connect_timeout: std::time::Duration,
    pub form_timeout: std::time::Duration,
    pub session_timeout: std::time::Duration,
    pub ready_timeout: std::time::Duration,
}

/// Validate `[cluster]`.
pub fn cluster_plan(
    c: &ClusterSpec,
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> ClusterPlan {
    let text =
        |s: &toml::Spanned<String>| Some(s.get_ref().trim().to_string()).filter(|s| !s.is_empty());
    let zookeeper = text(&c.zookeeper);
    if let Some(z) = &zookeeper
        && let Err(e) = z.parse::<super::ZkTarget>()
    {
        errors.push(loc.error(c.zookeeper.span(), "cluster.zookeeper", e.to_string()));
    }
    let name = text(&c.name);
    if let Some(n) = &name
        && let Err(e) = super::check_name(n)
    {
        errors.push(loc.error(c.name.span(), "cluster.name", e));
    }
    let processes = *c.processes.get_ref();
    if processes > super::MAX_PROCESSES as u64 {
        errors.push(loc.error(
            c.processes.span(),
            "cluster.processes",
            format!("must be 1 to {} (0: not set)", super::MAX_PROCESSES),
        ));
    }
    let advertise = text(&c.advertise);
    if let Some(a) = &advertise
        && a.rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        errors.push(loc.error(
            c.advertise.span(),
            "cluster.advertise",
            format!("`{}` is not HOST:PORT", a.escape_default()),
        ));
    }
    let mut secs = |v: &toml::Spanned<u64>, key: &str| {
        let n = *v.get_ref();
        if n == 0 || n > MAX_TIMEOUT_SECS {
            errors.push(loc.error(
                v.span(),
                key,
                format!("must be 1 to {MAX_TIMEOUT_SECS} seconds"),
            ));
        }
        std::time::Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS))
    };
    ClusterPlan {
        connect_timeout: secs(&c.connect_timeout_secs, "cluster.connect_timeout_secs"),
        form_timeout: secs(&c.form_timeout_secs, "cluster.form_timeout_secs"),
        session_timeout: secs(&c.session_timeout_secs, "cluster.session_timeout_secs"),
        ready_timeout: secs(&c.ready_timeout_secs, "cluster.ready_timeout_secs"),
        zookeeper,
        name,
        processes: (processes > 0).then_some(processes as usize),
        advertise,
    }
}
