//! The one list of detectors: their `[detectors.<kind>]` tables and how each
//! is built from its spec. A new detector adds a field here and an arm in
//! `build_detectors`; nothing else in the engine changes.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

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

/// `[detectors]`: one optional table per detector kind.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorsSpec {
    #[serde(default)]
    pub client_flood: ClientFloodSpec,
    #[serde(default)]
    pub blocklist_hit: BlocklistHitSpec,
    #[serde(default)]
    pub subnet_flood: SubnetFloodSpec,
    #[serde(default)]
    pub nxdomain_flood: NxdomainFloodSpec,
    #[serde(default)]
    pub servfail_flood: ServfailFloodSpec,
    #[serde(default)]
    pub random_subdomain: RandomSubdomainSpec,
    #[serde(default)]
    pub amplification: AmplificationSpec,
    #[serde(default)]
    pub unsolicited_response: UnsolicitedResponseSpec,
    #[serde(default)]
    pub spoofed_flood: SpoofedFloodSpec,
    #[serde(default)]
    pub rate_anomaly: RateAnomalySpec,
    #[serde(default)]
    pub tunneling: TunnelingSpec,
    #[serde(default)]
    pub dga: DgaSpec,
    #[serde(default)]
    pub newly_observed: NewlyObservedSpec,
}

/// Build the enabled detectors in a fixed order. `base` resolves relative
/// list paths; `extra_lists` are `--blocklist` files from the command line.
/// Every problem is pushed to `errors` (nothing stops at the first).
pub fn build_detectors(
    spec: &DetectorsSpec,
    base: &Path,
    extra_lists: &[std::path::PathBuf],
    loc: &Located<'_>,
    errors: &mut Vec<ConfigError>,
) -> (Vec<Arc<dyn Detector>>, Option<Arc<BlocklistSet>>) {
    let mut out: Vec<Arc<dyn Detector>> = Vec::new();
    let mut blocklist = None;

    let bl = &spec.blocklist_hit;
    if bl.enabled || !extra_lists.is_empty() {
        let mut lists: Vec<_> = bl.lists.iter().map(|p| base.join(p.get_ref())).collect();
        lists.extend(extra_lists.iter().cloned());
        let allow: Vec<_> = bl.allow.iter().map(|p| base.join(p.get_ref())).collect();
        match BlocklistSet::load(&lists, &allow) {
            Ok(set) => {
                let set = Arc::new(set);
                blocklist = Some(set.clone());
                out.push(Arc::new(BlocklistHit {
                    set,
                    severity: bl.severity,
                }));
            }
            Err(e) => {
                let span = bl.lists.first().map(|s| s.span()).unwrap_or(0..0);
                errors.push(loc.error(span, "detectors.blocklist_hit.lists", e.to_string()));
            }
        }
    }

    fn push<D: Detector + 'static>(out: &mut Vec<Arc<dyn Detector>>, d: Option<D>) {
        if let Some(d) = d {
            out.push(Arc::new(d));
        }
    }
    push(
        &mut out,
        ClientFlood::from_spec(&spec.client_flood, loc, errors),
    );
    push(
        &mut out,
        SubnetFlood::from_spec(&spec.subnet_flood, loc, errors),
    );
    push(
        &mut out,
        NxdomainFlood::from_spec(&spec.nxdomain_flood, loc, errors),
    );
    push(
        &mut out,
        ServfailFlood::from_spec(&spec.servfail_flood, loc, errors),
    );
    push(
        &mut out,
        RandomSubdomain::from_spec(&spec.random_subdomain, loc, errors),
    );
    push(
        &mut out,
        Amplification::from_spec(&spec.amplification, loc, errors),
    );
    push(
        &mut out,
        UnsolicitedResponse::from_spec(&spec.unsolicited_response, loc, errors),
    );
    push(
        &mut out,
        SpoofedFlood::from_spec(&spec.spoofed_flood, loc, errors),
    );
    push(
        &mut out,
        RateAnomaly::from_spec(&spec.rate_anomaly, loc, errors),
    );
    push(&mut out, Tunneling::from_spec(&spec.tunneling, loc, errors));
    push(&mut out, Dga::from_spec(&spec.dga, loc, errors));
    push(
        &mut out,
        NewlyObserved::from_spec(&spec.newly_observed, base, loc, errors),
    );
    (out, blocklist)
}
