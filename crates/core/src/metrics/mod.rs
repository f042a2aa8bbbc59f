//! Prometheus metrics: one metric table ([`MetricName`]), one registry handle
//! ([`Metrics`]), and a tiny HTTP endpoint ([`MetricsServer`]).
//!
//! Every name carries the `dnsmonitor_` prefix itself (the registry has no
//! namespace), counters end in `_total`, units are base units (seconds,
//! bytes). Label values come only from closed sets: the `as_str()` of the
//! crate's enums and the constants below, never from packet data, so the
//! number of series stays bounded whatever arrives on the wire. Every label
//! combination is created at start with value 0, so dashboards and `rate()`
//! see the series from the first scrape.
//!
//! The process collector (`process_resident_memory_bytes`, ...) is
//! registered in the same registry. The global `default_registry()` is never
//! used.

mod server;
pub mod spec;

pub use server::{MAX_REQUEST_BYTES, MetricsServer, REQUEST_TIMEOUT};

use prometheus::core::Collector;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::alert::State;
use crate::detect::{Kind, Severity};
use crate::dns::DecodeError;
use crate::packet::PacketError;

/// Values of the `qr` label of `dnsmonitor_dns_messages_total`.
pub const QR: [&str; 2] = ["query", "response"];
/// Values of the `rcode` label of `dnsmonitor_dns_responses_total`: the
/// header RCODEs 0 to 5 by name, every other value as `other`.
pub const RCODES: [&str; 7] = [
    "noerror", "formerr", "servfail", "nxdomain", "notimp", "refused", "other",
];

/// Index into [`RCODES`] of a response's RCODE.
pub fn rcode_slot(rcode: u16) -> usize {
    usize::from(rcode).min(RCODES.len() - 1)
}
/// Values of the `layer` label of `dnsmonitor_parse_errors_total`; `packet`
/// goes with the [`PacketError`] reasons, `dns` with the [`DecodeError`] ones.
pub const LAYERS: [&str; 2] = ["packet", "dns"];
/// Values of the `where` label of `dnsmonitor_capture_drops_total`: `kernel`
/// is pcap's `ps_drop` (buffer full), `interface` its `ps_ifdrop`.
pub const CAPTURE_DROP_WHERE: [&str; 2] = ["kernel", "interface"];
/// Values of the `table` label of `dnsmonitor_state_evictions_total`.
pub const EVICTION_TABLES: [&str; 6] = [
    "fragments",
    "tcp_flows",
    "tcp_bytes",
    "top_names",
    "window_keys",
    "pending_queries",
];
/// Values of the `outcome` label of `dnsmonitor_amqp_deliveries_total`.
pub const AMQP_DELIVERY_OUTCOMES: [&str; 4] = ["received", "acked", "rejected", "duplicate"];
/// Values of the `outcome` label of `dnsmonitor_amqp_publishes_total`.
pub const AMQP_PUBLISH_OUTCOMES: [&str; 3] = ["confirmed", "failed", "dropped"];

/// Values of the `result` label of `dnsmonitor_pipeline_reloads_total`.
pub const RELOAD_RESULTS: [&str; 2] = ["applied", "refused"];

/// Values of the `cause` label of `dnsmonitor_cluster_reforms_total`
/// (`crate::cluster::reform::Cause`).
pub const REFORM_CAUSES: [&str; 2] = ["loss", "grow"];

/// Values of the `session_state` label of
/// `dnsmonitor_zookeeper_session_state` (`crate::cluster`).
pub const ZK_SESSION_STATES: [&str; 6] = [
    "connected",
    "disconnected",
    "readonly",
    "expired",
    "auth_failed",
    "closed",
];

/// Every alert severity (the `severity` label).
pub const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];
/// Every alert state (the `state` label).
pub const STATES: [State; 3] = [State::Raised, State::Updated, State::Resolved];

// Adding a variant to Severity or State breaks these matches: extend the
// arrays above with it.
const _: fn(Severity) = |s| match s {
    Severity::Info | Severity::Warning | Severity::Critical => {}
};
const _: fn(State) = |s| match s {
    State::Raised | State::Updated | State::Resolved => {}
};

/// Names of the metrics the process collector exports (Linux).
pub const PROCESS_METRICS: [&str; 7] = [
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// Prometheus metric type of a [`MetricName`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// The metric table: every metric dnsmonitor defines (the process
/// collector's aside). [`MetricName::spec`] holds name, type, labels and help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricName {
    Packets,
    PacketBytes,
    DnsMessages,
    DnsResponses,
    ParseErrors,
    LateMessages,
    TimeJumps,
    LateTallies,
    Alerts,
    ActiveAlerts,
    WindowsClosed,
    EventTimeLag,
    Watermark,
    CaptureDrops,
    CaptureReceived,
    StateEvictions,
    AmqpDeliveries,
    AmqpPublishes,
    QueueDepth,
    BuildInfo,
    DnstapFrames,
    DnstapBytes,
    DnstapConnections,
    DnstapMessages,
    DnstapErrors,
    ClusterMembers,
    ClusterProcessIndex,
    ClusterConfigVersion,
    ClusterConfigRefused,
    ClusterReforms,
    ZookeeperSessionState,
    PipelineReloads,
    NodFilterFillRatio,
}

/// One row of the metric table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    pub name: &'static str,
    pub metric_type: MetricType,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

impl MetricName {
    pub const ALL: [MetricName; 33] = [
        MetricName::Packets,
        MetricName::PacketBytes,
        MetricName::DnsMessages,
        MetricName::DnsResponses,
        MetricName::ParseErrors,
        MetricName::LateMessages,
        MetricName::TimeJumps,
        MetricName::LateTallies,
        MetricName::Alerts,
        MetricName::ActiveAlerts,
        MetricName::WindowsClosed,
        MetricName::EventTimeLag,
        MetricName::Watermark,
        MetricName::CaptureDrops,
        MetricName::CaptureReceived,
        MetricName::StateEvictions,
        MetricName::AmqpDeliveries,
        MetricName::AmqpPublishes,
        MetricName::QueueDepth,
        MetricName::BuildInfo,
        MetricName::DnstapFrames,
        MetricName::DnstapBytes,
        MetricName::DnstapConnections,
        MetricName::DnstapMessages,
        MetricName::DnstapErrors,
        MetricName::ClusterMembers,
        MetricName::ClusterProcessIndex,
        MetricName::ClusterConfigVersion,
        MetricName::ClusterConfigRefused,
        MetricName::ClusterReforms,
        MetricName::ZookeeperSessionState,
        MetricName::PipelineReloads,
        MetricName::NodFilterFillRatio,
    ];

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The table row: name, type, label names, help text.
    pub const fn spec(self) -> MetricSpec {
        use MetricType::{Counter, Gauge};
        let (name, metric_type, labels, help): (_, _, &'static [&'static str], _) = match self {
            MetricName::Packets => (
                "dnsmonitor_packets_total",
                Counter,
                &[],
                "Frames read from capture files or the interface.",
            ),
            MetricName::PacketBytes => (
                "dnsmonitor_packet_bytes_total",
                Counter,
                &[],
                "Captured bytes read (frame capture lengths).",
            ),
            MetricName::DnsMessages => (
                "dnsmonitor_dns_messages_total",
                Counter,
                &["qr"],
                "DNS messages decoded, by direction (query or response).",
            ),
            MetricName::DnsResponses => (
                "dnsmonitor_dns_responses_total",
                Counter,
                &["rcode"],
                "DNS responses decoded, by header RCODE (noerror .. refused, other).",
            ),
            MetricName::ParseErrors => (
                "dnsmonitor_parse_errors_total",
                Counter,
                &["layer", "reason"],
                "Frames (layer=packet) or DNS payloads (layer=dns) rejected, by reason.",
            ),
            MetricName::LateMessages => (
                "dnsmonitor_late_messages_total",
                Counter,
                &[],
                "DNS messages older than the watermark: logged, not counted by detectors.",
            ),
            MetricName::TimeJumps => (
                "dnsmonitor_time_jumps_total",
                Counter,
                &[],
                "Times event time jumped ahead, believed once enough frames in a row agreed.",
            ),
            MetricName::LateTallies => (
                "dnsmonitor_late_tallies_total",
                Counter,
                &[],
                "Partial counts that reached the reduce side after their window closed (dropped; should stay 0).",
            ),
            MetricName::Alerts => (
                "dnsmonitor_alerts_total",
                Counter,
                &["kind", "severity", "state"],
                "Alert state changes emitted (raised, updated, resolved).",
            ),
            MetricName::ActiveAlerts => (
                "dnsmonitor_active_alerts",
                Gauge,
                &["kind"],
                "Alerts currently raised (not yet resolved).",
            ),
            MetricName::WindowsClosed => (
                "dnsmonitor_windows_closed_total",
                Counter,
                &[],
                "Sliding windows evaluated.",
            ),
            MetricName::EventTimeLag => (
                "dnsmonitor_event_time_lag_seconds",
                Gauge,
                &[],
                "Wall clock minus the newest packet time seen (live capture only).",
            ),
            MetricName::Watermark => (
                "dnsmonitor_watermark_seconds",
                Gauge,
                &[],
                "Event time (Unix seconds) up to which windows are closed.",
            ),
            MetricName::CaptureDrops => (
                "dnsmonitor_capture_drops_total",
                Counter,
                &["where"],
                "Packets dropped before dnsmonitor saw them (pcap ps_drop, ps_ifdrop).",
            ),
            MetricName::CaptureReceived => (
                "dnsmonitor_capture_received_total",
                Counter,
                &[],
                "Packets received by the capture (pcap ps_recv).",
            ),
            MetricName::StateEvictions => (
                "dnsmonitor_state_evictions_total",
                Counter,
                &["table"],
                "Entries evicted from a bounded state table because it was full.",
            ),
            MetricName::AmqpDeliveries => (
                "dnsmonitor_amqp_deliveries_total",
                Counter,
                &["outcome"],
                "AMQP deliveries consumed, by outcome.",
            ),
            MetricName::AmqpPublishes => (
                "dnsmonitor_amqp_publishes_total",
                Counter,
                &["outcome"],
                "AMQP publishes (alerts and reports; packet batches for a sensor), by outcome.",
            ),
            MetricName::QueueDepth => (
                "dnsmonitor_queue_depth",
                Gauge,
                &[],
                "Messages waiting in the ingest queue.",
            ),
            MetricName::BuildInfo => (
                "dnsmonitor_build_info",
                Gauge,
                &["version"],
                "Always 1; the version label is the dnsmonitor version.",
            ),
            MetricName::DnstapFrames => (
                "dnsmonitor_dnstap_frames_total",
                Counter,
                &[],
                "dnstap data frames received (sockets) or read (files).",
            ),
            MetricName::DnstapBytes => (
                "dnsmonitor_dnstap_bytes_total",
                Counter,
                &[],
                "Bytes of dnstap data frames (payload, without framing).",
            ),
            MetricName::DnstapConnections => (
                "dnsmonitor_dnstap_connections_total",
                Counter,
                &[],
                "dnstap sender connections accepted.",
            ),
            MetricName::DnstapMessages => (
                "dnsmonitor_dnstap_messages_total",
                Counter,
                &["type"],
                "dnstap messages decoded, by message type (client_query, resolver_response, ...).",
            ),
            MetricName::DnstapErrors => (
                "dnsmonitor_dnstap_errors_total",
                Counter,
                &["reason"],
                "dnstap connections, frames or messages rejected, by reason.",
            ),
            MetricName::ClusterMembers => (
                "dnsmonitor_cluster_members",
                Gauge,
                &[],
                "Members registered in this process's cluster in ZooKeeper (standbys included); 0 outside a cluster.",
            ),
            MetricName::ClusterProcessIndex => (
                "dnsmonitor_cluster_process_index",
                Gauge,
                &[],
                "This member's process index in its formed cluster; -1 while forming, as a standby, or outside a cluster.",
            ),
            MetricName::ClusterConfigVersion => (
                "dnsmonitor_cluster_config_version",
                Gauge,
                &[],
                "The pushed pipeline version this member runs; 0 when it runs its own pipeline file.",
            ),
            MetricName::ClusterConfigRefused => (
                "dnsmonitor_cluster_config_refused_total",
                Counter,
                &[],
                "Pushed pipeline versions this member refused as invalid (the last good one is kept).",
            ),
            MetricName::ClusterReforms => (
                "dnsmonitor_cluster_reforms_total",
                Counter,
                &["cause"],
                "Re-forms of this cluster member since it started, by cause: loss (a member of its formation was lost) or grow (a new member joined a cluster running below --processes).",
            ),
            MetricName::PipelineReloads => (
                "dnsmonitor_pipeline_reloads_total",
                Counter,
                &["result"],
                "Pipeline reloads (SIGHUP): applied (in force from an event-time boundary) or refused (invalid, or not applicable live; the version in force is kept).",
            ),
            MetricName::NodFilterFillRatio => (
                "dnsmonitor_nod_filter_fill_ratio",
                Gauge,
                &[],
                "Share of the bits set in the newly_observed Bloom filter (0 when the detector is off); its false-positive rate is this to the power of its hash count.",
            ),
            MetricName::ZookeeperSessionState => (
                "dnsmonitor_zookeeper_session_state",
                Gauge,
                &["session_state"],
                "1 for the state of this member's ZooKeeper session, 0 for the others.",
            ),
        };
        MetricSpec {
            name,
            metric_type,
            labels,
            help,
        }
    }

    fn opts(self) -> Opts {
        let s = self.spec();
        Opts::new(s.name, s.help)
    }
}

/// All dnsmonitor metrics, registered in one [`Registry`]. Cheap to clone
/// (every field is an `Arc` inside), `Send + Sync`: one handle is shared by
/// all worker threads. Label values only from closed sets (see the module
/// docs).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub registry: Registry,
    /// `dnsmonitor_packets_total`
    pub packets: IntCounter,
    /// `dnsmonitor_packet_bytes_total`
    pub bytes: IntCounter,
    /// `dnsmonitor_dns_messages_total{qr}`: values [`QR`].
    pub dns_messages: IntCounterVec,
    /// `dnsmonitor_dns_responses_total{rcode}`: values [`RCODES`].
    pub dns_responses: IntCounterVec,
    /// `dnsmonitor_parse_errors_total{layer, reason}`: `packet` with
    /// `PacketError::as_str()`, `dns` with `DecodeError::as_str()`.
    pub parse_errors: IntCounterVec,
    /// `dnsmonitor_late_messages_total`
    pub late_messages: IntCounter,
    /// `dnsmonitor_time_jumps_total`
    pub time_jumps: IntCounter,
    /// `dnsmonitor_late_tallies_total`
    pub late_tallies: IntCounter,
    /// `dnsmonitor_alerts_total{kind, severity, state}`
    pub alerts: IntCounterVec,
    /// `dnsmonitor_active_alerts{kind}`
    pub active_alerts: IntGaugeVec,
    /// `dnsmonitor_windows_closed_total`
    pub windows_closed: IntCounter,
    /// `dnsmonitor_event_time_lag_seconds` (set in live mode only)
    pub event_time_lag: Gauge,
    /// `dnsmonitor_watermark_seconds`
    pub watermark: Gauge,
    /// `dnsmonitor_capture_drops_total{where}`: values [`CAPTURE_DROP_WHERE`].
    pub capture_drops: IntCounterVec,
    /// `dnsmonitor_capture_received_total`
    pub capture_received: IntCounter,
    /// `dnsmonitor_state_evictions_total{table}`: values [`EVICTION_TABLES`].
    pub state_evictions: IntCounterVec,
    /// `dnsmonitor_amqp_deliveries_total{outcome}`: values [`AMQP_DELIVERY_OUTCOMES`].
    pub amqp_deliveries: IntCounterVec,
    /// `dnsmonitor_amqp_publishes_total{outcome}`: values [`AMQP_PUBLISH_OUTCOMES`].
    pub amqp_publishes: IntCounterVec,
    /// `dnsmonitor_queue_depth`
    pub queue_depth: IntGauge,
    /// `dnsmonitor_build_info{version}` = 1
    pub build_info: IntGaugeVec,
    /// `dnsmonitor_dnstap_frames_total`
    pub dnstap_frames: IntCounter,
    /// `dnsmonitor_dnstap_bytes_total`
    pub dnstap_bytes: IntCounter,
    /// `dnsmonitor_dnstap_connections_total`
    pub dnstap_connections: IntCounter,
    /// `dnsmonitor_dnstap_messages_total{type}`: `dnstap::MessageType::as_str()`.
    pub dnstap_messages: IntCounterVec,
    /// `dnsmonitor_dnstap_errors_total{reason}`: `dnstap::DnstapError::as_str()`.
    pub dnstap_errors: IntCounterVec,
    /// `dnsmonitor_cluster_members`
    pub cluster_members: IntGauge,
    /// `dnsmonitor_cluster_process_index`
    pub cluster_process_index: IntGauge,
    /// `dnsmonitor_cluster_config_version`
    pub cluster_config_version: IntGauge,
    /// `dnsmonitor_cluster_config_refused_total`
    pub cluster_config_refused: IntCounter,
    /// `dnsmonitor_cluster_reforms_total{cause}`: values [`REFORM_CAUSES`];
    /// carried over the re-exec with which a member re-forms.
    pub cluster_reforms: IntCounterVec,
    /// `dnsmonitor_pipeline_reloads_total{result}`: values [`RELOAD_RESULTS`].
    pub pipeline_reloads: IntCounterVec,
    /// `dnsmonitor_zookeeper_session_state{session_state}`: values [`ZK_SESSION_STATES`].
    pub zookeeper_session_state: IntGaugeVec,
    /// `dnsmonitor_nod_filter_fill_ratio`, read from the live filters at
    /// each `render` (nothing to bump on the hot path).
    pub nod_filter_fill_ratio: Gauge,
    /// Every family name registered, sorted.
    names: std::sync::Arc<[String]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Registers collectors and remembers the family names they describe.
struct Registrar {
    registry: Registry,
    names: Vec<String>,
}

impl Registrar {
    fn add<C: Collector + Clone + 'static>(&mut self, c: C) -> C {
        self.names
            .extend(c.desc().iter().map(|d| d.fq_name.clone()));
        // Names are static and distinct (checked by tests): cannot fail.
        self.registry
            .register(Box::new(c.clone()))
            .expect("metric table registers cleanly");
        c
    }

    fn counter(&mut self, m: MetricName) -> IntCounter {
        debug_assert!(m.spec().labels.is_empty());
        self.add(IntCounter::with_opts(m.opts()).expect("valid metric spec"))
    }

    fn gauge(&mut self, m: MetricName) -> Gauge {
        debug_assert!(m.spec().labels.is_empty());
        self.add(Gauge::with_opts(m.opts()).expect("valid metric spec"))
    }

    fn int_gauge(&mut self, m: MetricName) -> IntGauge {
        debug_assert!(m.spec().labels.is_empty());
        self.add(IntGauge::with_opts(m.opts()).expect("valid metric spec"))
    }

    fn counter_vec(&mut self, m: MetricName) -> IntCounterVec {
        self.add(IntCounterVec::new(m.opts(), m.spec().labels).expect("valid metric spec"))
    }

    fn gauge_vec(&mut self, m: MetricName) -> IntGaugeVec {
        self.add(IntGaugeVec::new(m.opts(), m.spec().labels).expect("valid metric spec"))
    }
}

impl Metrics {
    /// All metrics with the label sets of this build: `Kind::ALL`,
    /// `PacketError::ALL`, `DecodeError::ALL`.
    pub fn new() -> Self {
        let kinds = Kind::ALL.map(Kind::as_str);
        let packet_reasons = PacketError::ALL.map(PacketError::as_str);
        let dns_reasons = DecodeError::ALL.map(DecodeError::as_str);
        Self::with_labels(&kinds, &packet_reasons, &dns_reasons)
    }

    /// All metrics, in a fresh registry, with every label combination of
    /// the closed sets created at 0: `kinds` for `kind`, `packet_reasons`
    /// and `dns_reasons` for `reason` under `layer="packet"` / `"dns"`.
    pub fn with_labels(
        kinds: &[&'static str],
        packet_reasons: &[&'static str],
        dns_reasons: &[&'static str],
    ) -> Self {
        let registry = Registry::new_custom(None, None).expect("no prefix, no labels");
        let mut r = Registrar {
            registry,
            names: Vec::new(),
        };
        #[cfg(target_os = "linux")]
        r.add_process_collector();
        let m = Metrics {
            packets: r.counter(MetricName::Packets),
            bytes: r.counter(MetricName::PacketBytes),
            dns_messages: r.counter_vec(MetricName::DnsMessages),
            dns_responses: r.counter_vec(MetricName::DnsResponses),
            parse_errors: r.counter_vec(MetricName::ParseErrors),
            late_messages: r.counter(MetricName::LateMessages),
            time_jumps: r.counter(MetricName::TimeJumps),
            late_tallies: r.counter(MetricName::LateTallies),
            alerts: r.counter_vec(MetricName::Alerts),
            active_alerts: r.gauge_vec(MetricName::ActiveAlerts),
            windows_closed: r.counter(MetricName::WindowsClosed),
            event_time_lag: r.gauge(MetricName::EventTimeLag),
            watermark: r.gauge(MetricName::Watermark),
            capture_drops: r.counter_vec(MetricName::CaptureDrops),
            capture_received: r.counter(MetricName::CaptureReceived),
            state_evictions: r.counter_vec(MetricName::StateEvictions),
            amqp_deliveries: r.counter_vec(MetricName::AmqpDeliveries),
            amqp_publishes: r.counter_vec(MetricName::AmqpPublishes),
            queue_depth: r.int_gauge(MetricName::QueueDepth),
            build_info: r.gauge_vec(MetricName::BuildInfo),
            dnstap_frames: r.counter(MetricName::DnstapFrames),
            dnstap_bytes: r.counter(MetricName::DnstapBytes),
            dnstap_connections: r.counter(MetricName::DnstapConnections),
            dnstap_messages: r.counter_vec(MetricName::DnstapMessages),
            dnstap_errors: r.counter_vec(MetricName::DnstapErrors),
            cluster_members: r.int_gauge(MetricName::ClusterMembers),
            cluster_process_index: r.int_gauge(MetricName::ClusterProcessIndex),
            cluster_config_version: r.int_gauge(MetricName::ClusterConfigVersion),
            cluster_config_refused: r.counter(MetricName::ClusterConfigRefused),
            cluster_reforms: r.counter_vec(MetricName::ClusterReforms),
            pipeline_reloads: r.counter_vec(MetricName::PipelineReloads),
            zookeeper_session_state: r.gauge_vec(MetricName::ZookeeperSessionState),
            nod_filter_fill_ratio: r.gauge(MetricName::NodFilterFillRatio),
            registry: r.registry.clone(),
            names: r.finish(),
        };

        for qr in QR {
            m.dns_messages.with_label_values(&[qr]);
        }
        for rcode in RCODES {
            m.dns_responses.with_label_values(&[rcode]);
        }
        for reason in packet_reasons {
            m.parse_errors.with_label_values(&["packet", reason]);
        }
        for reason in dns_reasons {
            m.parse_errors.with_label_values(&["dns", reason]);
        }
        for kind in kinds {
            m.active_alerts.with_label_values(&[kind]);
            for sev in SEVERITIES {
                for state in STATES {
                    m.alerts
                        .with_label_values(&[kind, sev.as_str(), state.as_str()]);
                }
            }
        }
        for w in CAPTURE_DROP_WHERE {
            m.capture_drops.with_label_values(&[w]);
        }
        for t in EVICTION_TABLES {
            m.state_evictions.with_label_values(&[t]);
        }
        for o in AMQP_DELIVERY_OUTCOMES {
            m.amqp_deliveries.with_label_values(&[o]);
        }
        for o in AMQP_PUBLISH_OUTCOMES {
            m.amqp_publishes.with_label_values(&[o]);
        }
        for r in RELOAD_RESULTS {
            m.pipeline_reloads.with_label_values(&[r]);
        }
        for t in crate::dnstap::MessageType::ALL {
            m.dnstap_messages.with_label_values(&[t.as_str()]);
        }
        for e in crate::dnstap::DnstapError::ALL {
            m.dnstap_errors.with_label_values(&[e.as_str()]);
        }
        for st in ZK_SESSION_STATES {
            m.zookeeper_session_state.with_label_values(&[st]);
        }
        for c in REFORM_CAUSES {
            m.cluster_reforms.with_label_values(&[c]);
        }
        m.cluster_process_index.set(-1);
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        m
    }

    /// Show `state` as this member's ZooKeeper session state (one of
    /// [`ZK_SESSION_STATES`] at 1, the others at 0).
    pub fn set_zookeeper_session(&self, state: &str) {
        for st in ZK_SESSION_STATES {
            self.zookeeper_session_state
                .with_label_values(&[st])
                .set(i64::from(st == state));
        }
    }

    /// The registry in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> String {
        self.nod_filter_fill_ratio
            .set(crate::detect::newly_observed::fill_ratio());
        let mut out = String::new();
        // Fails only on an inconsistent family, which the table rules out;
        // a partial page is better than none.
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// Every metric family name registered (the table's and the process
    /// collector's), sorted.
    pub fn names(&self) -> Vec<String> {
        self.names.to_vec()
    }
}

impl Registrar {
    fn finish(&mut self) -> std::sync::Arc<[String]> {
        let mut names = std::mem::take(&mut self.names);
        names.sort();
        names.dedup();
        names.into()
    }

    #[cfg(target_os = "linux")]
    fn add_process_collector(&mut self) {
        let pc = prometheus::process_collector::ProcessCollector::for_self();
        self.names
            .extend(pc.desc().iter().map(|d| d.fq_name.clone()));
        self.registry
            .register(Box::new(pc))
            .expect("process collector registers cleanly");
    }
}

#[cfg(test)]
mod tests;
