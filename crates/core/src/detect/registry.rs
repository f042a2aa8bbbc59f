//! The one list of detectors (`detectors!` below): their kinds, their
//! `[detectors.<kind>]` tables and how each is built from its spec. A new
//! detector is its module and one row of that table; nothing else in the
//! engine changes.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Detector;
use super::amplification::{Amplification, AmplificationSpec};
use super::blocklist_hit::{BlocklistHit, BlocklistHitSpec};
use super::client_flood::{ClientFlood, ClientFloodSpec};
use super::dga::{Dga, DgaSpec};
use super::newly_observed::{NewlyObserved, NewlyObservedSpec};
use super::nxdomain_flood::{NxdomainFlood, NxdomainFloodSpec};
use super::random_subdomain::{RandomSubdomain, RandomSubdomainSpec};
use super::rate_anomaly::{RateAnomaly, RateAnomalySpec};
use super::servfail_flood::{ServfailFlood, ServfailFloodSpec};
use super::spoofed_flood::{SpoofedFlood, SpoofedFloodSpec};
use super::subnet_flood::{SubnetFlood, SubnetFloodSpec};
use super::tunneling::{Tunneling, TunnelingSpec};
use super::unsolicited_response::{UnsolicitedResponse, UnsolicitedResponseSpec};
use crate::blocklist::BlocklistSet;
use crate::spec::{ConfigError, Located};

/// The one table of detectors, in build (and evaluation) order. Each row
/// names the `Kind` variant, the wire name (the alert's `kind`, the
/// `[detectors.<name>]` table, a metric label value), the spec type and how
/// the detector is built from it (`Option<Arc<dyn Detector>>`; `None` when
/// disabled or invalid, with the errors pushed). `Kind`, `Kind::ALL`,
/// `Kind::as_str`, `DetectorsSpec` and `build_detectors` all come from
/// this table: adding a detector is its module (with `pub mod` in
/// `detect/mod.rs`) and one row here.
macro_rules! detectors {
    ($( $kind:ident $name:ident : $spec:ty => |$s:ident, $cx:ident| $build:expr; )*) => {
        /// Alert kinds (snake_case on the wire; also a bounded metric label).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind {
            $($kind,)*
        }

        impl Kind {
            pub const ALL: [Kind; [$(stringify!($kind)),*].len()] = [$(Kind::$kind,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$kind => stringify!($name),)*
                }
            }
        }

        /// `[detectors]`: one optional table per detector kind.
        #[derive(Clone, Debug, Default, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct DetectorsSpec {
            $(
                #[serde(default)]
                pub $name: $spec,
            )*
        }

        fn build_each(spec: &DetectorsSpec, cx: &mut Build<'_, '_>) -> Vec<Arc<dyn Detector>> {
            let mut out: Vec<Arc<dyn Detector>> = Vec::new();
            $(
                let ($s, $cx) = (&spec.$name, &mut *cx);
                if let Some(d) = $build {
                    out.push(d);
                }
            )*
            out
        }
    };
}

detectors! {
    BlocklistHit blocklist_hit: BlocklistHitSpec => |s, cx| build_blocklist_hit(s, cx);
    ClientFlood client_flood: ClientFloodSpec => |s, cx| arc(ClientFlood::from_spec(s, cx.loc, cx.errors));
    SubnetFlood subnet_flood: SubnetFloodSpec => |s, cx| arc(SubnetFlood::from_spec(s, cx.loc, cx.errors));
    NxdomainFlood nxdomain_flood: NxdomainFloodSpec => |s, cx| arc(NxdomainFlood::from_spec(s, cx.loc, cx.errors));
    ServfailFlood servfail_flood: ServfailFloodSpec => |s, cx| arc(ServfailFlood::from_spec(s, cx.loc, cx.errors));
    RandomSubdomain random_subdomain: RandomSubdomainSpec => |s, cx| arc(RandomSubdomain::from_spec(s, cx.loc, cx.errors));
    Amplification amplification: AmplificationSpec => |s, cx| arc(Amplification::from_spec(s, cx.loc, cx.errors));
    UnsolicitedResponse unsolicited_response: UnsolicitedResponseSpec => |s, cx| arc(UnsolicitedResponse::from_spec(s, cx.loc, cx.errors));
    SpoofedFlood spoofed_flood: SpoofedFloodSpec => |s, cx| arc(SpoofedFlood::from_spec(s, cx.loc, cx.errors));
    RateAnomaly rate_anomaly: RateAnomalySpec => |s, cx| arc(RateAnomaly::from_spec(s, cx.loc, cx.errors));
    Tunneling tunneling: TunnelingSpec => |s, cx| arc(Tunneling::from_spec(s, cx.loc, cx.errors));
    Dga dga: DgaSpec => |s, cx| arc(Dga::from_spec(s, cx.loc, cx.errors));
    NewlyObserved newly_observed: NewlyObservedSpec => |s, cx| arc(NewlyObserved::from_spec(s, cx.base, cx.loc, cx.errors));
}

/// What a row of the table may use to build its detector.
struct Build<'a, 'l> {
    /// Resolves relative paths in the pipeline.
    base: &'a Path,
    /// `--blocklist` files from the command line.
    extra_lists: &'a [std::path::PathBuf],
    loc: &'a Located<'l>,
    errors: &'a mut Vec<ConfigError>,
    /// The blocklists loaded (for `blocklist_hit` and the metrics).
    blocklist: Option<Arc<BlocklistSet>>,
}

fn arc<D: Detector + 'static>(d: Option<D>) -> Option<Arc<dyn Detector>> {
    d.map(|d| Arc::new(d) as Arc<dyn Detector>)
}

/// `blocklist_hit` is on when its table says so or when lists come from
/// the command line; its lists are loaded here (and kept for the caller).
fn build_blocklist_hit(bl: &BlocklistHitSpec, cx: &mut Build<'_, '_>) -> Option<Arc<dyn Detector>> {
    if !bl.enabled && cx.extra_lists.is_empty() {
        return None;
    }
    let mut lists: Vec<_> = bl.lists.iter().map(|p| cx.base.join(p.get_ref())).collect();
    lists.extend(cx.extra_lists.iter().cloned());
    let allow: Vec<_> = bl.allow.iter().map(|p| cx.base.join(p.get_ref())).collect();
    match BlocklistSet::load(&lists, &allow) {
        Ok(set) => {
            let set = Arc::new(set);
            cx.blocklist = Some(set.clone());
            Some(Arc::new(BlocklistHit {
                set,
                severity: bl.severity,
            }))
        }
        Err(e) => {
            let span = bl.lists.first().map(|s| s.span()).unwrap_or(0..0);
            cx.errors.push(
                cx.loc
                    .error(span, "detectors.blocklist_hit.lists", e.to_string()),
            );
            None
        }
    }
}

/// Build the enabled detectors in the table's order. `base` resolves
/// relative list paths; `extra_lists` are `--blocklist` files from the
/// command line. Every problem is pushed to `errors` (nothing stops at the
/// first).
pub fn build_detectors(
    spec: &DetectorsSpec,
    base: &Path,
    extra_lists: &[std::path::PathBuf],
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<Arc<dyn Detector>>, Option<Arc<BlocklistSet>>) {
    let mut cx = Build {
        base,
        extra_lists,
        loc,
        errors,
        blocklist: None,
    };
    let out = build_each(spec, &mut cx);
    (out, cx.blocklist)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire name of every kind (serde, `as_str`) is its table's name.
    #[test]
    fn every_kind_is_named_as_its_table() {
        let tables = serde_json::to_value(DetectorsSpec::default()).unwrap();
        let tables = tables.as_object().unwrap();
        assert_eq!(tables.len(), Kind::ALL.len());
        for k in Kind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::Value::from(k.as_str())
            );
            assert!(tables.contains_key(k.as_str()), "no table for {k}");
        }
    }
}
