//! Pipeline configuration in two phases: the TOML `Spec` (serde, unknown
//! keys rejected) is validated into a typed `Plan`, collecting every error
//! with file:line:column and the dotted key. `dnsmonitor check` runs exactly
//! this step, so a broken pipeline stops before the first packet.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::alert::LifecyclePolicy;
use crate::blocklist::BlocklistSet;
use crate::detect::{Detector, DetectorsSpec, build_detectors};
use crate::packet::PacketConfig;
use crate::window::WindowPlan;

use crate::alert::spec::{AlertsSpec, alerts_table};
use crate::amqp::spec::{SinkPlan, SinkSpec, SourcePlan, SourceSpec, sink_table, source_table};
use crate::cluster::spec::{ClusterPlan, ClusterSpec, cluster_plan};
use crate::metrics::spec::{MetricsSpec, metrics_table};
use crate::packet::spec::{CaptureSpec, capture_table};
use crate::reports::spec::{ReportsSpec, reports_table};
pub use crate::spec::{ConfigError, ConfigErrors, Located};
use crate::window::spec::{WindowSpec, window_table};

/// The default pipeline, as shipped in pipelines/default.toml.
pub const DEFAULT_PIPELINE: &str = include_str!("../../../../pipelines/default.toml");

pub use crate::spec::MAX_TIMEOUT_SECS;

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(default)]
    pub capture: CaptureSpec,
    #[serde(default)]
    pub window: WindowSpec,
    #[serde(default)]
    pub alerts: AlertsSpec,
    #[serde(default)]
    pub detectors: DetectorsSpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
    #[serde(default)]
    pub reports: ReportsSpec,
    #[serde(default)]
    pub source: SourceSpec,
    #[serde(default)]
    pub sink: SinkSpec,
    #[serde(default)]
    pub cluster: ClusterSpec,
}

/// The validated, typed pipeline.
pub struct Plan {
    /// Where it came from ("<default>" for the built-in one).
    pub origin: String,
    pub packet: PacketConfig,
    pub window: WindowPlan,
    pub lifecycle: LifecyclePolicy,
    pub detectors: Vec<Arc<dyn Detector>>,
    pub blocklist: Option<Arc<BlocklistSet>>,
    /// `[metrics] listen`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[reports] interval_secs`, microseconds (a multiple of the slide).
    pub report_interval_us: i64,
    /// `[reports] top`.
    pub report_top: usize,
    /// `[source]`.
    pub source: SourcePlan,
    /// `[sink]`.
    pub sink: SinkPlan,
    /// `[cluster]`.
    pub cluster: ClusterPlan,
    /// Problems that do not stop the pipeline (a retired key), located
    /// like errors; `check` and every command print them.
    pub warnings: Vec<ConfigError>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("origin", &self.origin)
            .field("window", &self.window)
            .field("lifecycle", &self.lifecycle)
            .field(
                "detectors",
                &self.detectors.iter().map(|d| d.kind()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Schema errors (unknown key, wrong type) reported by `check` at most.
pub const MAX_SCHEMA_ERRORS: usize = 100;

/// Deserialize the pipeline, collecting every schema error instead of the
/// first: after an error at a place in the file, its line is blanked (byte
/// for byte, so spans stay true) and the text deserialized again, as long
/// as it is still valid TOML and the line was not a table header (blanking
/// one would move its keys into the table above). The spec of the text with
/// the bad lines blanked comes back when one was reached, so the checks of
/// the values can run too.
fn spec_collecting_errors(loc: &Located<'_>) -> (Option<Spec>, Vec<ConfigError>) {
    let mut text = loc.text.to_string();
    let mut errors = Vec::new();
    while errors.len() < MAX_SCHEMA_ERRORS {
        let e = match toml::from_str::<Spec>(&text) {
            Ok(spec) => return (Some(spec), errors),
            Err(e) => e,
        };
        let span = e.span().unwrap_or(0..0);
        let mut err = loc.error(span.clone(), "", e.message().to_string());
        if span == (0..0) {
            err.line = 0;
            errors.push(err);
            break;
        }
        errors.push(err);
        let start = text[..span.start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[span.end..]
            .find('\n')
            .map_or(text.len(), |i| span.end + i);
        let line = &text[start..end];
        if line.trim_start().starts_with('[') || line.trim().is_empty() {
            break;
        }
        let blank: String = line
            .bytes()
            .map(|b| if b == b'\n' { '\n' } else { ' ' })
            .collect();
        text.replace_range(start..end, &blank);
        if text.parse::<toml::Table>().is_err() {
            break;
        }
    }
    (None, errors)
}

impl Plan {
    /// Load and validate a pipeline file; `extra_lists` are `--blocklist`s.
    pub fn from_file(path: &Path, extra_lists: &[PathBuf]) -> Result<Plan, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: file.clone(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read pipeline: {e}"),
            }])
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Plan::from_str(&text, &file, &base, extra_lists)
    }

    /// The built-in default pipeline (pipelines/default.toml).
    pub fn default_plan(extra_lists: &[PathBuf]) -> Result<Plan, ConfigErrors> {
        Plan::from_str(
            DEFAULT_PIPELINE,
            "<default pipeline>",
            Path::new("pipelines"),
            extra_lists,
        )
    }

    /// Validate a version pushed to a cluster: its lists are written into
    /// `dir` and given as extra blocklists; errors name its znode.
    pub fn from_pushed(
        p: &crate::cluster::store::Pushed,
        cluster: &str,
        dir: &Path,
    ) -> Result<Plan, ConfigErrors> {
        let f = p.files(cluster, dir)?;
        Plan::from_str(&f.pipeline, &f.origin, &f.dir, &f.lists)
    }

    /// Validate pipeline text. `file` names it in errors, `base` resolves
    /// relative paths inside it. Every table is checked (one function
    /// each) and every problem reported, in file order.
    pub fn from_str(
        text: &str,
        file: &str,
        base: &Path,
        extra_lists: &[PathBuf],
    ) -> Result<Plan, ConfigErrors> {
        let loc = Located { file, text };
        let (spec, mut errors) = spec_collecting_errors(&loc);
        let Some(spec) = spec else {
            return Err(ConfigErrors(errors));
        };
        let e = &mut errors;
        let (size, slide, late) = window_table(&spec.window, &loc, e);
        let packet = capture_table(&spec.capture, &loc, e);
        let lifecycle = alerts_table(&spec.alerts, &loc, e);
        let metrics_listen = metrics_table(&spec.metrics, &loc, e);
        let (report_interval_us, report_top) = reports_table(&spec.reports, size, slide, &loc, e);
        let mut warnings = Vec::new();
        let source = source_table(&spec.source, &loc, e, &mut warnings);
        let sink = sink_table(&spec.sink, &loc, e);
        let (detectors, blocklist) = build_detectors(&spec.detectors, base, extra_lists, &loc, e);
        if detectors.is_empty() && e.is_empty() {
            e.push(loc.error(0..0, "detectors", "no detector is enabled"));
        }
        let cluster = cluster_plan(&spec.cluster, &loc, e);

        if !errors.is_empty() {
            // In file order; problems with no place in the file last.
            errors.sort_by_key(|e| (e.line == 0, e.line, e.column));
            return Err(ConfigErrors(errors));
        }
        Ok(Plan {
            origin: file.to_string(),
            packet,
            window: WindowPlan::new(size, slide, late),
            lifecycle,
            detectors,
            blocklist,
            metrics_listen,
            report_interval_us,
            report_top,
            source,
            sink,
            cluster,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pipelines/default.toml shows every key with its default: the file
    /// and the defaults in code must say the same (a new key or a changed
    /// default in one place only fails here).
    #[test]
    fn default_pipeline_equals_the_defaults_in_code() {
        let shipped: Spec = toml::from_str(DEFAULT_PIPELINE).expect("default.toml parses");
        let code: Spec = toml::from_str("").expect("empty pipeline parses");
        let (shipped, code) = (
            serde_json::to_value(&shipped).unwrap(),
            serde_json::to_value(&code).unwrap(),
        );
        for (table, want) in code.as_object().unwrap() {
            for (key, value) in want.as_object().into_iter().flatten() {
                assert_eq!(
                    shipped[table].get(key),
                    Some(value),
                    "pipelines/default.toml [{table}] {key}"
                );
            }
        }
        assert_eq!(shipped, code);
        // Every key in the file is one the code knows (deny_unknown_fields),
        // and the file mentions every detector table.
        let text: toml::Table = toml::from_str(DEFAULT_PIPELINE).unwrap();
        let det = text["detectors"].as_table().unwrap();
        for name in code["detectors"].as_object().unwrap().keys() {
            assert!(
                det.contains_key(name),
                "default.toml lacks [detectors.{name}]"
            );
        }
    }

    fn errs(text: &str) -> Vec<String> {
        match Plan::from_str(text, "p.toml", Path::new("."), &[]) {
            Ok(_) => vec![],
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn default_pipeline_is_valid() {
        let plan = Plan::default_plan(&[]).unwrap();
        assert_eq!(plan.window, WindowPlan::new(10, 1, 2));
        assert!(!plan.detectors.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = errs("[window]\nsize_secs = 10\nslide_secs = 3\n");
        assert_eq!(
            e,
            vec!["p.toml:3:14: key `window.slide_secs`: must divide window.size_secs (10)"]
        );
        let e = errs(
            "[window]\nsize_secs = 10\n\n[detectors.client_flood]\nwarning_qps = 100.0\ncritical_qps = 50.0\n",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("p.toml:6:16: key `detectors.client_flood.critical_qps`"),
            "{e:?}"
        );
        let e = errs("[window]\nsize_sec = 10\n");
        assert!(
            e[0].starts_with("p.toml:2:1: key `window.size_sec`: unknown field `size_sec`"),
            "{e:?}"
        );
        let e = errs("[source]\ntype = \"kafka\"\nprefetch = 0\nbind = [\"nokey\"]\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("p.toml:2:8: key `source.type`: `kafka`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("p.toml:3:12: key `source.prefetch`"),
            "{e:?}"
        );
        assert!(
            e[2].contains("key `source.bind`: `nokey` is not EXCHANGE=ROUTING_KEY"),
            "{e:?}"
        );
        let e = errs("[sink]\ntype = \"kafka\"\nexchange = \"\"\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("p.toml:2:8: key `sink.type`: `kafka`"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("p.toml:3:12: key `sink.exchange`"),
            "{e:?}"
        );
        // The retired `source.type` loads (old files keep working) with a
        // located warning; any other value is still an error (above).
        for v in ["amqp", "capture"] {
            let text = format!("[source]\ntype = \"{v}\"\n");
            let plan = Plan::from_str(&text, "p.toml", Path::new("."), &[]).unwrap();
            let w: Vec<String> = plan.warnings.iter().map(|w| w.to_string()).collect();
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].starts_with("p.toml:2:8: key `source.type`: no longer used"),
                "{w:?}"
            );
        }
        assert!(Plan::default_plan(&[]).unwrap().warnings.is_empty());
        let e = errs("[alerts]\nhold_secs = \"soon\"\n");
        assert!(
            e[0].starts_with("p.toml:2:13: key `alerts.hold_secs`:"),
            "{e:?}"
        );
    }
}
