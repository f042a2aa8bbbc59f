//! Command line: argument parsing (clap) and the human-facing printing of
//! results. No detection logic here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};

use dnsmonitor::alert::Alert;
use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::reload::Reload;
use dnsmonitor::dataflow::{self, Input, Outputs, RunOptions, RunSummary, Speed};
use dnsmonitor::metrics::{Metrics, MetricsServer};
use dnsmonitor::reports::Report;
use dnsmonitor::sinks::watch::OutputWatch;
use dnsmonitor::sinks::{JsonLines, Sink, Tee, open_output};
use dnsmonitor::sources::PcapFiles;
use dnsmonitor::sources::live::{LiveCapture, LiveOptions, default_filter, install_stop_signals};
use dnsmonitor::sources::live_source::LiveSource;
use dnsmonitor::sources::pcap_file::is_stream;
use dnsmonitor::time::Clock;
use dnsmonitor::time::rfc3339;

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: a runtime failure (an output failed, a capture broke, a
/// broker was lost).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status: a usage or configuration error, found before any input was
/// read (clap uses 2 for its own usage errors too).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the run finished, but part of the input could not be read
/// (a capture corrupt or cut short); the warnings name the file and where.
pub const EXIT_PARTIAL_INPUT: i32 = 3;

/// An error in what the user asked for (arguments, pipeline, URI): exit
/// status [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// `Err(Usage(..))` from a formatted message.
macro_rules! usage {
    ($($t:tt)*) => { anyhow::Error::new(Usage(format!($($t)*))) };
}

/// The exit status for an error: [`EXIT_USAGE`] when a [`Usage`] error is
/// anywhere in its chain, else [`EXIT_FAILURE`].
pub fn exit_status(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| c.is::<Usage>()) {
        EXIT_USAGE
    } else {
        EXIT_FAILURE
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "dnsmonitor",
    version,
    about = "DNS DoS and malicious-domain detection on event-time windows"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay pcap/pcapng files through a pipeline and print alerts.
    Replay(ReplayArgs),
    /// Capture on a network interface in real time.
    Live(LiveArgs),
    /// Write a labelled capture: benign traffic with chosen attacks, and the truth.
    Synth(SynthArgs),
    /// Capture (or read captures) and publish packet batches to RabbitMQ.
    Sensor(SensorArgs),
    /// Run the pipeline on packet batches consumed from a RabbitMQ queue.
    Consume(ConsumeArgs),
    /// Print alerts published to a RabbitMQ exchange as they arrive.
    Alerts(AlertsArgs),
    /// Receive dnstap (Frame Streams) from resolvers on unix/TCP sockets.
    Dnstap(DnstapArgs),
    /// A cluster of processes coordinated by ZooKeeper: status, push.
    Cluster {
        #[command(subcommand)]
        command: crate::cluster_cmd::ClusterCommand,
    },
    /// Validate a pipeline file (and the blocklists it names).
    Check {
        /// The pipeline TOML file.
        pipeline: PathBuf,
    },
    /// Write the man pages and shell completions into DIR (packaging).
    #[command(hide = true)]
    Assets {
        /// Output directory (created): man/*.1, completions/{bash,zsh,fish}.
        dir: PathBuf,
    },
}

/// Options shared by every command that runs the pipeline.
#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Pipeline file (default: the built-in pipelines/default.toml).
    #[arg(long, short = 'p')]
    pub pipeline: Option<PathBuf>,
    /// Add a blocklist file (any supported format); repeatable.
    #[arg(long = "blocklist", short = 'b')]
    pub blocklists: Vec<PathBuf>,
    /// Where alerts go: a file, or `-` for standard output (JSON lines).
    /// Without it alerts go to standard output: readable lines on a
    /// terminal, JSON lines otherwise.
    #[arg(long)]
    pub alerts: Option<PathBuf>,
    /// Alert format: `json` (JSON lines, `dnsmonitor.alert/1`) or `human`
    /// (aligned readable lines) [default: human on a terminal without
    /// --alerts, else json].
    #[arg(long, value_enum)]
    pub format: Option<AlertFormat>,
    /// Write one JSON line per DNS message to a file, or `-` for standard output.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Write periodic top-k reports (names, domains, clients) to a file or `-`.
    #[arg(long)]
    pub reports: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, short = 'w', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Serve Prometheus metrics at http://ADDR/metrics (overrides `[metrics] listen`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub amqp: AmqpArgs,
    /// No progress bar and no summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Full-screen live view: rates, RCODE mix, open alerts, top tables;
    /// `q` quits (closes the windows, flushes, prints the summary). Alerts
    /// then go to the screen (and to --alerts FILE when given).
    #[arg(long)]
    pub tui: bool,
}

/// How alerts are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AlertFormat {
    /// JSON lines, the `dnsmonitor.alert/1` schema.
    Json,
    /// Aligned readable lines, escaped (coloured on a terminal).
    Human,
}

impl PipelineArgs {
    /// The alert output: `--alerts`, else standard output.
    fn alerts_path(&self) -> &std::path::Path {
        self.alerts.as_deref().unwrap_or(std::path::Path::new("-"))
    }

    /// The alert sink over `out`: readable lines when asked (`--format
    /// human`) or when nobody asked and standard output is a terminal;
    /// coloured only on a terminal (and without `NO_COLOR`).
    fn alert_sink(&self, out: Box<dyn Write + Send>) -> Box<dyn Sink<Alert>> {
        use dnsmonitor::sinks::human::{HumanAlerts, colour_wanted};
        let to_terminal = self.alerts_path().as_os_str() == "-" && std::io::stdout().is_terminal();
        let human = match self.format {
            Some(f) => f == AlertFormat::Human,
            None => self.alerts.is_none() && to_terminal,
        };
        if human && to_terminal {
            Box::new(HumanAlerts::for_terminal(out, colour_wanted()))
        } else if human {
            Box::new(HumanAlerts::new(out, false))
        } else {
            Box::new(JsonLines::new(out))
        }
    }
}

/// Where alerts are also published (RabbitMQ topic exchange).
#[derive(clap::Args, Debug)]
pub struct AmqpArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic exchange for alerts (routing key `<kind>.<severity>`) and reports
    /// (`report.<name>`) [default: `[sink] exchange`, dnsmonitor.alerts].
    #[arg(long)]
    pub exchange: Option<String>,
}

impl AmqpArgs {
    fn uri(&self) -> anyhow::Result<Option<String>> {
        self.broker.uri()
    }
}

/// Name of the systemd credential holding the AMQP URI.
pub const AMQP_CREDENTIAL: &str = "dnsmonitor-amqp-uri";

/// The RabbitMQ broker: from the flag, a file or the environment.
#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// AMQP broker URI, e.g. amqp://user:pass@host:5672/%2f (better from the
    /// environment or a file: the password stays out of argv).
    #[arg(
        long,
        env = "DNSMONITOR_AMQP_URI",
        hide_env_values = true,
        value_name = "URI"
    )]
    pub amqp: Option<String>,
    /// Read the AMQP URI from this file (first line); wins over --amqp and
    /// DNSMONITOR_AMQP_URI.
    #[arg(long, value_name = "PATH")]
    pub amqp_file: Option<PathBuf>,
}

impl BrokerArgs {
    /// The URI, which this command cannot do without.
    fn required(&self) -> anyhow::Result<String> {
        self.uri()?.ok_or_else(|| {
            usage!("no broker: give --amqp URI, --amqp-file PATH or DNSMONITOR_AMQP_URI")
        })
    }

    /// The URI, checked (it parses; no `amqps://`): a bad one is a usage
    /// error, shown without its password.
    fn uri(&self) -> anyhow::Result<Option<String>> {
        let uri = self.given()?;
        if let Some(u) = &uri {
            dnsmonitor::amqp::client::check_uri(u).map_err(|e| usage!("{e}"))?;
        }
        Ok(uri)
    }

    fn given(&self) -> anyhow::Result<Option<String>> {
        // The file is the explicit choice: a unit file may also set the
        // environment variable (which clap reads into `amqp`).
        match &self.amqp_file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let line = text.lines().next().unwrap_or("").trim().to_string();
                if line.is_empty() {
                    return Err(usage!("{} holds no AMQP URI", p.display()));
                }
                Ok(Some(line))
            }
            None => match &self.amqp {
                Some(u) => Ok(Some(u.trim().to_string())),
                None => Self::credential(),
            },
        }
    }

    /// Under systemd, the URI may come as a credential
    /// (`LoadCredential=dnsmonitor-amqp-uri`, see deploy/systemd): read
    /// from `$CREDENTIALS_DIRECTORY`, never from argv or the environment.
    fn credential() -> anyhow::Result<Option<String>> {
        let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") else {
            return Ok(None);
        };
        let p = std::path::Path::new(&dir).join(AMQP_CREDENTIAL);
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read credential {}", p.display()))?;
        let line = text.lines().next().unwrap_or("").trim().to_string();
        Ok((!line.is_empty()).then_some(line))
    }
}

#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Topic exchange the alerts are published to.
    #[arg(long, default_value = dnsmonitor::amqp::DEFAULT_EXCHANGE)]
    pub exchange: String,
    /// Binding pattern (`client_flood.*`, `*.critical`, `#`); repeatable.
    #[arg(long = "bind")]
    pub bindings: Vec<String>,
    /// Print JSON lines even on a terminal.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng), replayed in the order given; `-` is
    /// standard input (FIFOs and /dev/stdin work too, read once).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub common: PipelineArgs,
    /// Replay pace: `max` (as fast as possible), `1x` (recorded pace), `10x`,
    /// `0.5x`; factors from 0.001x to 1000000x.
    #[arg(long, default_value = "max", value_parser = parse_speed)]
    pub speed: Speed,
    /// Keep serving /metrics after the replay ends, until SIGINT/SIGTERM.
    #[arg(long, requires = "metrics_listen")]
    pub metrics_linger: bool,
    #[command(flatten)]
    pub cluster: crate::cluster_cmd::ClusterArgs,
}

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Interface to capture on (`ip link` lists them; `any` for all).
    #[arg(long, short = 'i')]
    pub interface: String,
    /// BPF filter (default: UDP and TCP on the pipeline's DNS ports, and IP fragments).
    #[arg(long)]
    pub filter: Option<String>,
    #[command(flatten)]
    pub tuning: CaptureTuning,
    #[command(flatten)]
    pub common: PipelineArgs,
    #[command(flatten)]
    pub cluster: crate::cluster_cmd::ClusterArgs,
}

/// libpcap settings of a live capture.
#[derive(clap::Args, Debug)]
pub struct CaptureTuning {
    /// Bytes kept of each packet.
    #[arg(long, default_value_t = dnsmonitor::sources::live::DEFAULT_SNAPLEN)]
    pub snaplen: i32,
    /// Kernel capture buffer in bytes.
    #[arg(long, default_value_t = dnsmonitor::sources::live::DEFAULT_BUFFER_SIZE)]
    pub buffer_size: i32,
    /// Put the interface in promiscuous mode.
    #[arg(long)]
    pub promisc: bool,
}

impl CaptureTuning {
    fn options(&self, interface: &str, filter: &str) -> LiveOptions {
        LiveOptions {
            interface: interface.to_string(),
            filter: filter.to_string(),
            snaplen: self.snaplen,
            buffer_size: self.buffer_size,
            promisc: self.promisc,
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["interface", "file", "dnstap"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["queue", "exchange"])))]
pub struct SensorArgs {
    /// Capture on this interface (`any` for all).
    #[arg(long, short = 'i')]
    pub interface: Option<String>,
    /// BPF filter for --interface (default: UDP and TCP port 53, and IP fragments).
    #[arg(long, requires = "interface")]
    pub filter: Option<String>,
    #[command(flatten)]
    pub tuning: CaptureTuning,
    /// Read these capture files (pcap or pcapng) instead, in order.
    #[arg(long, num_args = 1.., value_name = "CAPTURE")]
    pub file: Vec<PathBuf>,
    /// Receive dnstap from resolvers instead (`unix:PATH` or
    /// `tcp:HOST:PORT`, repeatable) and forward it as dnstap batches.
    #[arg(long, value_name = "ADDR")]
    pub dnstap: Vec<dnsmonitor::sources::dnstap_listen::ListenAddr>,
    /// Mode of --dnstap unix socket files (octal).
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = parse_socket_mode)]
    pub socket_mode: u32,
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Publish to this durable queue (through the default exchange).
    #[arg(long)]
    pub queue: Option<String>,
    /// Publish to this topic exchange instead (with --routing-key).
    #[arg(long, requires = "routing_key")]
    pub exchange: Option<String>,
    /// Routing key for --exchange.
    #[arg(long, requires = "exchange")]
    pub routing_key: Option<String>,
    /// Packets per batch.
    #[arg(long, default_value_t = dnsmonitor::amqp::sensor::DEFAULT_BATCH_PACKETS, value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|v| v as usize))]
    pub batch_packets: usize,
    /// Send a batch once it has been open this many milliseconds.
    #[arg(long, default_value_t = dnsmonitor::amqp::sensor::DEFAULT_BATCH_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_ms: u64,
    /// Batches waiting for the broker's confirm at most (reading pauses beyond).
    #[arg(long, default_value_t = dnsmonitor::amqp::sensor::DEFAULT_MAX_IN_FLIGHT, value_parser = clap::value_parser!(u32).range(1..=65_535).map(|v| v as usize))]
    pub max_in_flight: usize,
    /// Sensor id in every batch (default: the host name).
    #[arg(long)]
    pub sensor_id: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (packets read, capture
    /// drops, publishes by outcome).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// No summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Queue of packet batches (durable; declared if missing). Default: `[source] queue`.
    #[arg(long)]
    pub queue: Option<String>,
    /// Unacked batches in flight (default: `[source] prefetch`, 1000).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: Option<u16>,
    /// Seconds after which a silent sensor stops holding windows open
    /// (default: `[source] idle_timeout_secs`, 10).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=dnsmonitor::config::MAX_TIMEOUT_SECS))]
    pub idle_timeout: Option<u64>,
    /// Dead-letter exchange for rejected (malformed) batches (default: `[source] dead_letter_exchange`).
    #[arg(long, value_name = "NAME")]
    pub dead_letter_exchange: Option<String>,
    /// Bind the queue to a topic exchange: EXCHANGE=ROUTING_KEY; repeatable.
    #[arg(long = "bind", value_name = "EXCHANGE=KEY", value_parser = dnsmonitor::amqp::spec::parse_binding)]
    pub bindings: Vec<(String, String)>,
    /// Finish once every sensor seen has sent its last batch (replays through the broker);
    /// in a cluster, every sensor seen by any member.
    #[arg(long)]
    pub exit_on_eos: bool,
    /// Do not publish alerts to the broker (only to --alerts).
    #[arg(long)]
    pub no_alert_exchange: bool,
    #[command(flatten)]
    pub common: PipelineArgs,
    #[command(flatten)]
    pub cluster: crate::cluster_cmd::ClusterArgs,
}

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// Scenario(s): benign, client_flood, subnet_flood, nxdomain_flood, servfail_flood,
    /// random_subdomain, amplification, unsolicited_response, spoofed_flood, rate_anomaly,
    /// tunneling, blocklist_hit, rate_ramp (a slow rate_anomaly), dga (infected hosts: give
    /// minutes), mixed (every attack but rate_ramp and dga). Repeatable.
    #[arg(long = "scenario", required = true, num_args = 1..)]
    pub scenarios: Vec<String>,
    /// Random seed: the same seed gives the same capture.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Capture length in seconds of event time.
    #[arg(long, default_value_t = 120)]
    pub duration: u32,
    /// Multiply every traffic rate by this (a positive number).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub rate_scale: f64,
    /// Benign IPv4 clients sharing the background rate (300 to 250000).
    #[arg(long, default_value_t = 300)]
    pub clients: u32,
    /// Length of every attack in seconds (default: each attack's slot).
    #[arg(long)]
    pub attack_secs: Option<u32>,
    /// Rate scale of one attack instead of --rate-scale: KIND=X. Repeatable.
    #[arg(long = "intensity", value_name = "KIND=X", value_parser = parse_intensity, allow_hyphen_values = true)]
    pub intensity: Vec<(String, f64)>,
    /// The capture to write (classic pcap).
    #[arg(long)]
    pub out: PathBuf,
    /// The truth file to write (JSON, `dnsmonitor.truth/1`).
    #[arg(long)]
    pub truth: PathBuf,
}

/// Slowest and fastest `--speed` factors: slower than 1000 times the
/// recorded pace is a stalled replay, not a replay.
pub const SPEED_FACTORS: std::ops::RangeInclusive<f64> = 0.001..=1_000_000.0;

/// `--speed`: a [`Speed`] with its factor within [`SPEED_FACTORS`].
fn parse_speed(s: &str) -> Result<Speed, String> {
    match s.parse::<Speed>()? {
        Speed::Factor(f) if !SPEED_FACTORS.contains(&f) => Err(format!(
            "speed `{s}` is out of range: use a factor from {}x to {}x, or `max`",
            SPEED_FACTORS.start(),
            SPEED_FACTORS.end()
        )),
        speed => Ok(speed),
    }
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Check { pipeline } => check(&pipeline),
        Command::Cluster { command } => crate::cluster_cmd::run(command),
        Command::Replay(args) => replay(args),
        Command::Live(args) => live(args),
        Command::Synth(args) => synth(args),
        Command::Alerts(args) => alerts(args),
        Command::Consume(args) => consume(args),
        Command::Sensor(args) => sensor(args),
        Command::Dnstap(args) => dnstap(args),
        Command::Assets { dir } => crate::assets::write(&dir).map(|()| EXIT_OK),
    }
}

fn alerts(args: AlertsArgs) -> anyhow::Result<i32> {
    use dnsmonitor::amqp::error::redact;
    use dnsmonitor::amqp::subscriber::{
        NotAlert, alert_line_coloured, consume_alerts_blocking_ready,
    };
    use dnsmonitor::escape::for_terminal as clean;
    /// Messages that are not alerts warned about one by one (then counted).
    const WARN_FIRST: u64 = 3;
    let uri = args.broker.required()?;
    let stop = install_stop_signals().context("signal handlers")?;
    let human = !args.json && std::io::stdout().is_terminal();
    let colour = human && dnsmonitor::sinks::human::colour_wanted();
    let mut out = std::io::stdout().lock();
    let exchange = args.exchange.clone();
    let mut skipped: std::collections::BTreeMap<NotAlert, u64> = Default::default();
    consume_alerts_blocking_ready(
        &uri,
        &exchange,
        &args.bindings,
        stop,
        || eprintln!("alerts: listening on {} exchange {exchange}", redact(&uri)),
        |body| match alert_line_coloured(body, human, colour) {
            Ok(text) => {
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
            Err(why) => {
                let n = skipped.entry(why).or_default();
                *n += 1;
                let odd = skipped.iter().filter(|(w, _)| **w != NotAlert::Report);
                if why != NotAlert::Report && odd.map(|(_, n)| n).sum::<u64>() <= WARN_FIRST {
                    let preview: String = body.chars().take(60).collect();
                    // Not eprintln: a closed stderr must not stop the command.
                    let _ = writeln!(
                        std::io::stderr(),
                        "warning: skipped a message that is not an alert ({}): {}",
                        why.as_str(),
                        clean(&preview)
                    );
                }
            }
        },
    )?;
    if !skipped.is_empty() {
        let list: Vec<_> = skipped
            .iter()
            .map(|(w, n)| format!("{n} {}", w.as_str()))
            .collect();
        let _ = writeln!(
            std::io::stderr(),
            "alerts: skipped messages that are not alerts: {}",
            list.join(", ")
        );
    }
    Ok(EXIT_OK)
}

fn parse_intensity(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{}`: expected KIND=X", s.escape_debug()))?;
    let f: f64 = v
        .parse()
        .map_err(|_| format!("`{}`: X must be a number", s.escape_debug()))?;
    Ok((k.to_string(), f))
}

fn synth(args: SynthArgs) -> anyhow::Result<i32> {
    use dnsmonitor::synth::labelled::{self, SynthOptions};
    let opts = SynthOptions {
        scenarios: args.scenarios.clone(),
        seed: args.seed,
        duration_s: args.duration,
        rate_scale: args.rate_scale,
        start_us: labelled::DEFAULT_START_US,
        clients: args.clients,
        attack_secs: args.attack_secs,
        intensity: args.intensity.clone(),
    };
    // Bad options are usage errors, found before any file is created.
    labelled::validate(&opts).map_err(|m| usage!("{m}"))?;
    let (truth, frames) = labelled::generate_file(&opts, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let text = serde_json::to_string_pretty(&truth)?;
    std::fs::write(&args.truth, text + "\n")
        .with_context(|| format!("cannot write {}", args.truth.display()))?;
    eprintln!(
        "synth: wrote {} frames to {} and {} attack(s) to {}",
        frames,
        args.out.display(),
        truth.attacks.len(),
        args.truth.display()
    );
    Ok(0)
}

pub(crate) fn load_plan(pipeline: Option<&PathBuf>, lists: &[PathBuf]) -> anyhow::Result<Plan> {
    // A list given on the command line is blamed on the flag, not on the
    // pipeline's `detectors.blocklist_hit.lists`.
    for l in lists {
        if let Err(e) = std::fs::File::open(l) {
            let shown = dnsmonitor::escape::for_terminal(&l.display().to_string());
            return Err(usage!("--blocklist {shown}: cannot read: {e}"));
        }
    }
    let plan = match pipeline {
        Some(p) => Plan::from_file(p, lists),
        None => Plan::default_plan(lists),
    };
    let plan = plan.map_err(|e| usage!("invalid pipeline:\n{e}"))?;
    warn_pipeline(&plan);
    warn_blocklist(&plan);
    Ok(plan)
}

/// The pipeline's warnings (retired keys), located like its errors.
fn warn_pipeline(plan: &Plan) {
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
}

/// Say which blocklist lines were rejected: the first few of each list
/// (`file:line: why: "the line"`, escaped), then how many in all.
fn warn_blocklist(plan: &Plan) {
    let Some(b) = &plan.blocklist else { return };
    let lists: Vec<_> = b.lists().iter().filter(|l| l.skipped > 0).collect();
    if lists.is_empty() {
        return;
    }
    for w in b.warnings() {
        eprintln!("warning: blocklist {w}");
    }
    let skipped: usize = lists.iter().map(|l| l.skipped).sum();
    eprintln!(
        "warning: {skipped} blocklist line(s) rejected in {} list(s); their usable lines were loaded",
        lists.len()
    );
}

fn check(pipeline: &std::path::Path) -> anyhow::Result<i32> {
    match Plan::from_file(pipeline, &[]) {
        Ok(plan) => {
            warn_pipeline(&plan);
            warn_blocklist(&plan);
            let kinds: Vec<_> = plan.detectors.iter().map(|d| d.kind().as_str()).collect();
            println!(
                "{}: ok: window {} s sliding every {} s, detectors: {}",
                pipeline.display(),
                plan.window.size_us() / 1_000_000,
                plan.window.slide_us / 1_000_000,
                kinds.join(", ")
            );
            // Names from the file are printed escaped.
            use dnsmonitor::escape::for_terminal;
            let so = &plan.source;
            if !so.queue.is_empty() {
                println!(
                    "  source: amqp queue {} (prefetch {}, idle timeout {} s{})",
                    for_terminal(&so.queue),
                    so.prefetch,
                    so.idle_timeout_secs,
                    so.dead_letter_exchange
                        .as_ref()
                        .map_or(String::new(), |d| format!(
                            ", dead-letter exchange {}",
                            for_terminal(d)
                        ))
                );
            }
            if plan.sink.amqp {
                println!(
                    "  sink: amqp exchange {}",
                    for_terminal(&plan.sink.exchange)
                );
            }
            if let Some(b) = &plan.blocklist {
                println!(
                    "  blocklist: {} entries, allowlist: {} entries",
                    b.len(),
                    b.allow_len()
                );
            }
            Ok(0)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s)", pipeline.display(), errors.0.len());
            Ok(EXIT_USAGE)
        }
    }
}

/// Everything a run needs besides its input.
struct Prepared {
    plan: Arc<Plan>,
    outputs: Outputs,
    metrics: Option<(Metrics, MetricsServer)>,
    /// Metrics for the screen when none are served (`--tui`).
    screen_metrics: Option<Metrics>,
    /// The live screen (`--tui`), once started.
    screen: Option<dnsmonitor::tui::Screen>,
    tui: bool,
    /// Set when an output fails (and by SIGINT/SIGTERM where installed):
    /// the run's `RunOptions::stop`.
    stop: Arc<AtomicBool>,
    watch: OutputWatch,
}

impl Prepared {
    /// SIGHUP (`systemctl reload`) re-reads the pipeline file and the
    /// blocklists as at start. A version that does not load is refused with
    /// the `check`-style errors in the log; one that cannot be applied live
    /// (another window, other detectors) is refused saying why; either way
    /// the version in force stays and `dnsmonitor_pipeline_reloads_total
    /// {result="refused"}` counts it. A good one is handed to the run, whose
    /// reader puts it in force at an event-time boundary (`dataflow::reload`).
    fn reload(
        &self,
        c: &PipelineArgs,
        mut signals: signal_hook::iterator::Signals,
    ) -> anyhow::Result<Arc<Reload>> {
        let reload = Arc::new(Reload::new(self.plan.clone()));
        let (r, metrics) = (reload.clone(), self.run_metrics());
        let (pipeline, lists) = (c.pipeline.clone(), c.blocklists.clone());
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let shown = pipeline.as_ref().map_or("the default pipeline".into(), |p| {
                        dnsmonitor::escape::for_terminal(&p.display().to_string())
                    });
                    let in_force = r.latest().number;
                    let offered = load_plan(pipeline.as_ref(), &lists)
                        .map_err(|e| format!("{e:#}"))
                        .and_then(|plan| r.offer(Arc::new(plan)));
                    match offered {
                        Ok(()) => eprintln!(
                            "reload: {shown} loaded; it takes effect at the next event-time boundary"
                        ),
                        Err(why) => {
                            eprintln!(
                                "reload: refused {shown}, version {in_force} stays in force: {why}"
                            );
                            if let Some(m) = &metrics {
                                m.pipeline_reloads.with_label_values(&["refused"]).inc();
                            }
                        }
                    }
                }
            })
            .context("SIGHUP handler")?;
        if !c.quiet {
            let shown = c
                .pipeline
                .as_ref()
                .map_or("the default pipeline".into(), |p| {
                    dnsmonitor::escape::for_terminal(&p.display().to_string())
                });
            eprintln!("reload: SIGHUP re-reads {shown} and the blocklists");
        }
        Ok(reload)
    }

    /// The metrics the run counts into: the served ones, else the screen's.
    fn run_metrics(&self) -> Option<Metrics> {
        self.metrics
            .as_ref()
            .map(|(m, _)| m.clone())
            .or_else(|| self.screen_metrics.clone())
    }

    /// `--tui`: take over the terminal; the screen gets a copy of every
    /// alert state and report line. `title` is escaped here.
    fn start_screen(&mut self, title: &str) -> anyhow::Result<()> {
        use dnsmonitor::tui::{Screen, ScreenError};
        if !self.tui {
            return Ok(());
        }
        let m = self.run_metrics().unwrap_or_default();
        let title = dnsmonitor::escape::for_terminal(title);
        let (screen, alerts, reports) =
            Screen::start(title, m, self.stop.clone()).map_err(|e| match e {
                ScreenError::NotATerminal => usage!("{e}"),
                e => anyhow::Error::new(e),
            })?;
        let o = &mut self.outputs;
        let before = std::mem::replace(&mut o.alerts, Box::new(Tee::default()));
        o.alerts = Box::new(Tee::new(vec![before, Box::new(alerts)]));
        o.reports = Some(match o.reports.take() {
            Some(r) => Box::new(Tee::new(vec![r, Box::new(reports)])),
            None => Box::new(reports),
        });
        self.screen = Some(screen);
        Ok(())
    }

    /// The outputs, for the run (once).
    fn take_outputs(&mut self) -> Outputs {
        std::mem::replace(
            &mut self.outputs,
            Outputs {
                alerts: Box::new(Tee::default()),
                events: None,
                reports: None,
            },
        )
    }

    /// The run is over: let the screen show it and give the terminal back
    /// (after the operator quits, when the input ended by itself).
    fn finish_screen(&mut self) -> anyhow::Result<()> {
        if let Some(s) = self.screen.take() {
            s.finish().context("restoring the terminal")?;
        }
        Ok(())
    }
}

/// The exit status of a finished run: an output that failed is an error (a
/// reader that went away, `| head`, is not), then input that could only
/// partly be read.
fn run_status(watch: &OutputWatch, summary: &RunSummary) -> i32 {
    if let Some(f) = watch.failure().filter(|f| !f.reader_gone()) {
        eprintln!(
            "error: the {} output failed ({}); the run stopped there",
            f.output, f.message
        );
        return EXIT_FAILURE;
    }
    partial_input(&summary.broken_files)
}

/// Warn about inputs that could only partly be read (even with --quiet:
/// the exit status alone does not say where): [`EXIT_PARTIAL_INPUT`] when
/// there are any, else [`EXIT_OK`].
fn partial_input(broken: &[(PathBuf, String)]) -> i32 {
    for (p, msg) in broken {
        eprintln!("warning: {} ended early: {msg}", p.display());
    }
    if broken.is_empty() {
        EXIT_OK
    } else {
        EXIT_PARTIAL_INPUT
    }
}

/// The identity of an output path, when it names a regular file (existing:
/// device and inode, so links count; not yet created: its absolute path).
/// `None` for `-` and for devices, FIFOs and terminals (`/dev/null` may
/// take several outputs).
fn file_identity(p: &std::path::Path) -> Option<(u64, u64, PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    if p.as_os_str() == "-" {
        return None;
    }
    match std::fs::metadata(p) {
        Ok(m) if m.is_file() => Some((m.dev(), m.ino(), PathBuf::new())),
        Ok(_) => None,
        Err(_) => {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = std::fs::canonicalize(dir.unwrap_or(std::path::Path::new("."))).ok()?;
            Some((0, 0, dir.join(p.file_name()?)))
        }
    }
}

/// Refuse two outputs that are the same file (they would truncate and
/// interleave each other), or an output that is one of the `inputs`.
fn check_outputs(c: &PipelineArgs, inputs: &[PathBuf]) -> anyhow::Result<()> {
    let outputs = [
        ("--alerts", c.alerts.as_ref()),
        ("--events", c.events.as_ref()),
        ("--reports", c.reports.as_ref()),
    ];
    // Before any output is opened: nothing is written for a usage error.
    if c.tui
        && let Some((flag, _)) = outputs
            .iter()
            .find(|(_, p)| p.is_some_and(|p| p.as_os_str() == "-"))
    {
        return Err(usage!(
            "{flag} - cannot go to standard output with --tui (the screen is there): give it a file"
        ));
    }
    if c.tui && !std::io::stdout().is_terminal() {
        return Err(usage!("{}", dnsmonitor::tui::ScreenError::NotATerminal));
    }
    let mut seen: Vec<(String, (u64, u64, PathBuf))> = inputs
        .iter()
        .filter_map(|p| Some((format!("input {}", p.display()), file_identity(p)?)))
        .collect();
    for (flag, path) in outputs {
        let Some(path) = path else { continue };
        let Some(id) = file_identity(path) else {
            continue;
        };
        if let Some((other, _)) = seen.iter().find(|(_, s)| *s == id) {
            return Err(usage!(
                "{flag} {} is the same file as {other}: give each output a file of its own",
                path.display()
            ));
        }
        seen.push((format!("{flag} {}", path.display()), id));
    }
    Ok(())
}

fn prepare(c: &PipelineArgs, append: bool, stop: Arc<AtomicBool>) -> anyhow::Result<Prepared> {
    let plan = load_plan(c.pipeline.as_ref(), &c.blocklists)?;
    prepare_with(c, plan, append, true, stop)
}

/// Open the outputs of a loaded plan; `publish`: alerts may go to a broker.
/// An output that fails later sets `stop`.
fn prepare_with(
    c: &PipelineArgs,
    plan: Plan,
    append: bool,
    publish: bool,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Prepared> {
    check_outputs(c, &[])?;
    let plan = Arc::new(plan);
    let watch = OutputWatch::new(stop.clone());
    let open_output = |p: &PathBuf| open_output(p, append);
    // With --tui alerts go to the screen, and to a file only when named.
    let alerts = if c.tui && c.alerts.is_none() {
        None
    } else {
        Some(dnsmonitor::sinks::open_output(c.alerts_path(), append).context("alert output")?)
    };
    let events = match &c.events {
        Some(p) => {
            let out = open_output(p).context("event output")?;
            Some(watch.sink("event", Box::new(JsonLines::new(out))))
        }
        None => None,
    };
    let mut reports: Vec<Box<dyn Sink<Report>>> = Vec::new();
    if let Some(p) = &c.reports {
        let out = open_output(p).context("report output")?;
        reports.push(watch.sink("report", Box::new(JsonLines::new(out))));
    }
    let metrics = serve_metrics(c.metrics_listen.or(plan.metrics_listen))?;
    let screen_metrics = (c.tui && metrics.is_none()).then(Metrics::new);
    let mut sinks: Vec<Box<dyn Sink<Alert>>> =
        alerts.map(|a| c.alert_sink(a)).into_iter().collect();
    let uri = c.amqp.uri()?;
    if plan.sink.amqp && publish && uri.is_none() {
        return Err(usage!(
            "the pipeline's [sink] type = \"amqp\" needs a broker: give --amqp URI, --amqp-file PATH or DNSMONITOR_AMQP_URI"
        ));
    }
    if let Some(uri) = uri.filter(|_| publish) {
        let m = metrics.as_ref().map(|(m, _)| m.clone());
        let exchange = c.amqp.exchange.as_deref().unwrap_or(&plan.sink.exchange);
        let sink = dnsmonitor::amqp::sink::AmqpAlertSink::connect(&uri, exchange, m)?;
        eprintln!(
            "alerts: publishing alerts and reports to {} exchange {exchange}",
            dnsmonitor::amqp::error::redact(&uri),
        );
        // Reports go out too (routing key `report.<name>`), besides --reports.
        reports.push(Box::new(sink.reports()));
        sinks.push(Box::new(sink));
    }
    Ok(Prepared {
        plan,
        outputs: Outputs {
            alerts: watch.sink("alert", Box::new(Tee::new(sinks))),
            events,
            reports: (!reports.is_empty()).then(|| Box::new(Tee::new(reports)) as _),
        },
        metrics,
        screen_metrics,
        screen: None,
        tui: c.tui,
        stop,
        watch,
    })
}

/// SIGHUP, taken from the start of a command that runs a pipeline, so a
/// reload requested while it starts does not end it (the default action):
/// it is handled once the run starts (`Prepared::reload`).
fn hangup_signals() -> anyhow::Result<signal_hook::iterator::Signals> {
    signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]).context("SIGHUP handler")
}

/// Form the cluster a member registered in (no-op without one); a member
/// loss then re-forms as `restart` says.
fn form(
    member: Option<crate::cluster_cmd::Member>,
    metrics: Option<Metrics>,
    restart: crate::cluster_cmd::Restart,
    reload: &Arc<Reload>,
) -> anyhow::Result<(
    Option<crate::cluster_cmd::Running>,
    Option<dnsmonitor::cluster::net::Endpoints>,
)> {
    match member {
        Some(m) => {
            let (r, e) = m.form(metrics, restart, Some(reload.clone()))?;
            Ok((Some(r), Some(e)))
        }
        None => Ok((None, None)),
    }
}

/// How a cluster member of a run with these outputs starts over when it
/// re-forms. `append`: the outputs are opened for appending (live,
/// consume: what was written before the re-form stays, and the new run
/// carries on from the saved newly_observed filters); a replay truncates
/// them and reads its files again from the start. `refuse`: why this run
/// cannot start over. A member asked to stop does not start over either.
fn restart(p: &Prepared, append: bool, refuse: Option<String>) -> crate::cluster_cmd::Restart {
    crate::cluster_cmd::Restart {
        refuse,
        save_filters: append,
        outputs: Some(p.watch.clone()),
        stop: Some(p.stop.clone()),
    }
}

fn replay(args: ReplayArgs) -> anyhow::Result<i32> {
    let c = &args.common;
    check_outputs(c, &args.files)?;
    // SIGINT/SIGTERM stop it as they stop `live`: the windows up to the
    // last packet read close, outputs are flushed, the summary is printed
    // and the exit status is 0 (a second signal exits at once). A failed
    // output sets the same flag.
    let stop = install_stop_signals().context("signal handlers")?;
    // SIGHUP from now on is a reload request (handled once the run starts).
    let hup = hangup_signals()?;
    let (plan, member) = crate::cluster_cmd::plan_and_member(&args.cluster, c)?;
    let mut p = prepare_with(c, plan, false, true, stop)?;
    let progress = !c.quiet && !c.tui && std::io::stderr().is_terminal();
    // Starting over reads the files again; a stream was read once.
    let refuse = args.files.iter().any(|f| is_stream(f)).then(|| {
        "a replay of standard input or a FIFO cannot start over: start the members again"
            .to_string()
    });
    let reload = p.reload(c, hup)?;
    let (running, endpoints) = form(member, p.run_metrics(), restart(&p, false, refuse), &reload)?;
    let opts = RunOptions {
        workers: c.workers as usize,
        speed: args.speed,
        progress,
        stop: Some(p.stop.clone()),
        metrics: p.run_metrics(),
        cluster: endpoints,
        reload: Some(reload),
        ..RunOptions::default()
    };
    let input = if args.files.iter().any(|f| is_stream(f)) {
        // Standard input or a FIFO can be read only once: one worker reads
        // everything (like a live capture) instead of every worker reading
        // every file.
        Input::Single(Box::new(PcapFiles::open_single(&args.files)?))
    } else {
        // Fail before starting when a file cannot be opened.
        PcapFiles::open(&args.files)?;
        Input::Files(files_in_time_order(&args.files, c.quiet))
    };
    let names: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
    let pace = match args.speed {
        Speed::Max => String::new(),
        Speed::Factor(f) => format!(" at {f}x"),
    };
    p.start_screen(&format!("replay {}{pace}", names.join(" ")))?;
    let summary = dataflow::run(p.plan.clone(), input, opts, p.take_outputs());
    let saved = save_filters();
    p.finish_screen()?;
    if let Some(r) = running {
        r.finish();
    }
    let summary = summary?;
    if !c.quiet {
        print_summary("replay", &summary, c.workers);
    }
    let status = run_status(&p.watch, &summary);
    let status = if saved { status } else { status.max(1) };
    if let Some((_, server)) = p.metrics {
        if args.metrics_linger {
            let stop = p.stop.clone();
            eprintln!(
                "metrics: still serving on http://{}/metrics until SIGINT/SIGTERM",
                server.local_addr()
            );
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                Clock.sleep(std::time::Duration::from_millis(100));
            }
        }
        server.stop();
    }
    Ok(status)
}

/// Capture files ordered by their first packet's time (event time must
/// not go backwards between files, or the later file's packets are late and
/// lost to detection); says so when that is not the order given.
fn files_in_time_order(files: &[PathBuf], quiet: bool) -> Vec<PathBuf> {
    let sorted = dnsmonitor::sources::pcap_file::in_time_order(files);
    if !quiet && sorted != files {
        let names: Vec<String> = sorted
            .iter()
            .map(|p| dnsmonitor::escape::for_terminal(&p.display().to_string()))
            .collect();
        eprintln!(
            "replay: reading the files in the time order of their first packet: {}",
            names.join(", ")
        );
    }
    sorted
}

fn live(args: LiveArgs) -> anyhow::Result<i32> {
    let c = &args.common;
    // A restarted service must not wipe what it wrote before: append.
    let stop = install_stop_signals().context("signal handlers")?;
    // SIGHUP from now on is a reload request (handled once the run starts).
    let hup = hangup_signals()?;
    let (plan, member) = crate::cluster_cmd::plan_and_member(&args.cluster, c)?;
    let mut p = prepare_with(c, plan, true, true, stop)?;
    let filter = args
        .filter
        .clone()
        .unwrap_or_else(|| default_filter(&p.plan.packet.dns_ports));
    let opts = args.tuning.options(&args.interface, &filter);
    let cap = LiveCapture::open(&opts)?;
    let source = LiveSource::new(cap);
    let drops = source.drops.clone();
    let failure = source.failure.clone();
    eprintln!("live: capturing on {} (filter: {filter})", args.interface);
    let reload = p.reload(c, hup)?;
    let (running, endpoints) = form(member, p.run_metrics(), restart(&p, true, None), &reload)?;
    let run_opts = RunOptions {
        workers: c.workers as usize,
        stop: Some(p.stop.clone()),
        metrics: p.run_metrics(),
        capture_drops: Some(drops),
        cluster: endpoints,
        reload: Some(reload),
        ..RunOptions::default()
    };
    p.start_screen(&format!("live on {}", args.interface))?;
    let input = Input::Single(Box::new(source));
    let summary = dataflow::run(p.plan.clone(), input, run_opts, p.take_outputs());
    let saved = save_filters();
    p.finish_screen()?;
    if let Some(r) = running {
        r.finish();
    }
    let summary = summary?;
    if !c.quiet {
        print_summary("live", &summary, c.workers);
    }
    let status = run_status(&p.watch, &summary);
    let status = if saved { status } else { status.max(1) };
    if let Some((_, server)) = p.metrics {
        server.stop();
    }
    // A capture that failed while running (interface gone) is an error:
    // a service manager should see it and restart.
    if let Some(msg) = failure.lock().ok().and_then(|f| f.clone()) {
        eprintln!("error: {msg}");
        return Ok(EXIT_FAILURE);
    }
    Ok(status)
}

fn consume(args: ConsumeArgs) -> anyhow::Result<i32> {
    use dnsmonitor::amqp::error::redact;
    use dnsmonitor::amqp::source::{AmqpIngest, AmqpSourceOptions};
    let c = &args.common;
    let uri = c.amqp.broker.required()?;
    let (plan, member) = crate::cluster_cmd::plan_and_member(&args.cluster, c)?;
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| plan.source.queue.clone());
    if queue.is_empty() {
        return Err(usage!(
            "no queue: give --queue NAME or set [source] queue in the pipeline"
        ));
    }
    let stop = install_stop_signals().context("signal handlers")?;
    // SIGHUP from now on is a reload request (handled once the run starts).
    let hup = hangup_signals()?;
    let mut p = prepare_with(c, plan, true, !args.no_alert_exchange, stop)?;
    let src = &p.plan.source;
    let mut bind = src.bind.clone();
    bind.extend(args.bindings.iter().cloned());
    let opts = AmqpSourceOptions {
        uri: uri.clone(),
        queue: queue.clone(),
        prefetch: args.prefetch.unwrap_or(src.prefetch),
        idle_timeout: std::time::Duration::from_secs(
            args.idle_timeout.unwrap_or(src.idle_timeout_secs),
        ),
        dead_letter_exchange: args
            .dead_letter_exchange
            .clone()
            .or_else(|| src.dead_letter_exchange.clone()),
        bind,
        // A cluster member ends with the cluster (`consume_input`): a
        // sensor's end-of-stream batch reaches one member only.
        exit_on_eos: args.exit_on_eos && member.is_none(),
        metrics: p.metrics.as_ref().map(|(m, _)| m.clone()),
    };
    let (ingest, source) = AmqpIngest::connect(opts, p.plan.window)?;
    eprintln!("consume: reading {} queue {queue}", redact(&uri));
    let reload = p.reload(c, hup)?;
    let (running, endpoints) = form(member, p.run_metrics(), restart(&p, true, None), &reload)?;
    let run_opts = RunOptions {
        workers: c.workers as usize,
        stop: Some(p.stop.clone()),
        metrics: p.run_metrics(),
        cluster: endpoints,
        reload: Some(reload),
        ..RunOptions::default()
    };
    p.start_screen(&format!("consume {} queue {queue}", redact(&uri)))?;
    let input = match &running {
        Some(r) => Input::Single(Box::new(r.consume_input(source, args.exit_on_eos))),
        None => Input::Single(Box::new(source)),
    };
    let summary = dataflow::run(p.plan.clone(), input, run_opts, p.take_outputs());
    let saved = save_filters();
    p.finish_screen()?;
    if let Some(r) = running {
        r.finish();
    }
    let summary = summary?;
    // Ack only what reached every output; otherwise leave it to a rerun.
    let n = if summary.output_closed {
        eprintln!(
            "error: an output failed; the batches not yet acknowledged stay in queue {queue} for the next run"
        );
        ingest.abandon()
    } else {
        ingest.finish()
    };
    if !c.quiet {
        print_summary("consume", &summary, c.workers);
        eprintln!(
            "queue: {} batches ({} packets) from {} sensor(s); {} acked, {} rejected, {} duplicates, {} missing, {} reconnects, prefetch {}",
            n.deliveries,
            n.packets,
            n.sensors,
            n.acked,
            n.rejected,
            n.duplicates,
            n.missing,
            n.reconnects,
            n.prefetch
        );
        if n.time_rejected > 0 {
            eprintln!(
                "queue: {} of the rejected batches were dated far ahead of their sensor and the clock (see README: event time in consume)",
                n.time_rejected
            );
        }
    }
    if let Some((_, server)) = p.metrics {
        server.stop();
    }
    Ok(if summary.output_closed || !saved {
        1
    } else {
        0
    })
}

fn sensor(args: SensorArgs) -> anyhow::Result<i32> {
    use dnsmonitor::amqp::error::redact;
    use dnsmonitor::amqp::sensor::{SensorOptions, Target, default_sensor_id};
    use dnsmonitor::sources::{FrameSource, NoteBroken};
    let uri = args.broker.required()?;
    let target = match (&args.queue, &args.exchange, &args.routing_key) {
        (Some(q), _, _) => Target::Queue(q.clone()),
        (None, Some(e), Some(k)) => Target::Exchange {
            name: e.clone(),
            routing_key: k.clone(),
        },
        _ => {
            return Err(usage!(
                "give --queue NAME, or --exchange NAME with --routing-key KEY"
            ));
        }
    };
    let mut broken = None;
    let (input, what): (Box<dyn FrameSource + Send>, String) = match &args.interface {
        Some(iface) => {
            let filter = args.filter.clone().unwrap_or_else(|| {
                default_filter(&dnsmonitor::packet::PacketConfig::default().dns_ports)
            });
            let cap = LiveCapture::open(&args.tuning.options(iface, &filter))?;
            (
                Box::new(LiveSource::new(cap)),
                format!("capturing on {iface} (filter: {filter})"),
            )
        }
        None if !args.dnstap.is_empty() => sensor_dnstap_input(&args)?,
        None => {
            let (files, b) = NoteBroken::new(PcapFiles::open_single(&args.file)?);
            broken = Some(b);
            (
                Box::new(files),
                format!("reading {} file(s)", args.file.len()),
            )
        }
    };
    let stop = install_stop_signals().context("signal handlers")?;
    let server = serve_metrics(args.metrics_listen)?;
    let opts = SensorOptions {
        uri: uri.clone(),
        target: target.clone(),
        sensor_id: args.sensor_id.clone().unwrap_or_else(default_sensor_id),
        batch_packets: args.batch_packets,
        batch_ms: args.batch_ms,
        max_in_flight: args.max_in_flight,
        metrics: server.as_ref().map(|(m, _)| m.clone()),
    };
    let to = match &target {
        Target::Queue(q) => format!("queue {q}"),
        Target::Exchange { name, routing_key } => format!("exchange {name} key {routing_key}"),
    };
    let id = opts.sensor_id.escape_debug().to_string();
    if !args.quiet {
        eprintln!("sensor {id}: {what}, publishing to {} {to}", redact(&uri));
    }
    let s = dnsmonitor::amqp::sensor::run(opts, input, stop)?;
    if let Some((_, server)) = server {
        server.stop();
    }
    if !args.quiet {
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        eprintln!(
            "sensor {id}: {} packets in {} batches ({} bytes) confirmed in {:.2} s ({:.0} packets/s); {} re-sent after {} reconnect(s), {} unroutable",
            s.packets,
            s.batches,
            s.bytes,
            secs,
            s.packets as f64 / secs,
            s.resent,
            s.reconnects,
            s.unroutable
        );
        if let Some(c) = s.capture {
            eprintln!(
                "capture: {} received by the filter, {} dropped by the kernel, {} dropped by the interface",
                c.received, c.dropped_kernel, c.dropped_interface
            );
        }
    }
    let broken = broken.map_or_else(Vec::new, |b| {
        std::mem::take(&mut *b.lock().unwrap_or_else(|p| p.into_inner()))
    });
    Ok(partial_input(&broken))
}

/// Start the /metrics server when an address is given.
fn serve_metrics(
    addr: Option<std::net::SocketAddr>,
) -> anyhow::Result<Option<(Metrics, MetricsServer)>> {
    let Some(addr) = addr else { return Ok(None) };
    let m = Metrics::new();
    let server = MetricsServer::start(addr, m.clone())
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    eprintln!("metrics: serving on http://{}/metrics", server.local_addr());
    Ok(Some((m, server)))
}

/// End of a run: write the `newly_observed` filter files (see
/// `detect::newly_observed`); false when one could not be written (said on
/// stderr), which makes the exit status 1 like a failed output.
fn save_filters() -> bool {
    let errors = dnsmonitor::detect::newly_observed::save_all();
    for e in &errors {
        eprintln!(
            "error: newly_observed filter not saved: {}",
            dnsmonitor::escape::for_terminal(e)
        );
    }
    errors.is_empty()
}

/// The run summary on stderr: what was read, what could not be parsed or
/// kept, what was found.
fn print_summary(what: &str, s: &RunSummary, workers: u16) {
    let mut e = std::io::stderr().lock();
    summary_input(&mut e, what, s, workers);
    summary_losses(&mut e, s);
    summary_findings(&mut e, s);
}

/// Packets, capture times, pipeline versions, DNS and dnstap messages.
fn summary_input(e: &mut impl Write, what: &str, s: &RunSummary, workers: u16) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(e, "--- dnsmonitor {what} summary ---");
    if let Some(c) = &s.capture {
        let _ = writeln!(
            e,
            "capture: {} received by the filter, {} dropped by the kernel, {} dropped by the interface",
            c.received, c.dropped_kernel, c.dropped_interface
        );
    }
    let _ = writeln!(
        e,
        "packets: {} read in {:.2} s ({:.0} packets/s, {} worker{})",
        s.frames,
        secs,
        s.frames as f64 / secs,
        workers,
        if workers == 1 { "" } else { "s" }
    );
    if let (Some(a), Some(b)) = (s.first_ts_us, s.last_ts_us) {
        let _ = writeln!(e, "capture time: {} .. {}", rfc3339(a), rfc3339(b));
    }
    for (number, origin, from_us) in &s.versions {
        let _ = writeln!(
            e,
            "pipeline: version {number} ({}) in force from event time {}",
            dnsmonitor::escape::for_terminal(origin),
            rfc3339(*from_us)
        );
    }
    let _ = writeln!(
        e,
        "dns messages: {} ({} queries, {} responses; {} udp, {} tcp); not dns: {} packets; tcp without dns payload: {} packets",
        s.dns_messages,
        s.queries,
        s.responses,
        s.packet.udp_messages,
        s.packet.tcp_messages,
        s.packet.not_dns,
        s.packet.tcp_control
    );
    let d = &s.dnstap;
    if !d.is_empty() {
        let types: Vec<_> = d
            .nonzero_messages()
            .iter()
            .map(|(t, n)| format!("{t}={n}"))
            .collect();
        let _ = writeln!(
            e,
            "dnstap: {} frames ({} bytes), {} connections ({} closed for errors); messages: {}",
            d.frames,
            d.bytes,
            d.connections,
            d.connections_rejected,
            if types.is_empty() {
                "none".to_string()
            } else {
                types.join(" ")
            }
        );
        if d.upstream_servfail + d.no_server_address > 0 {
            let _ = writeln!(
                e,
                "dnstap: {} upstream SERVFAIL answers, {} messages without a server address",
                d.upstream_servfail, d.no_server_address
            );
        }
    }
}

/// Parse errors, reassembly evictions, late messages, refused window state.
fn summary_losses(e: &mut impl Write, s: &RunSummary) {
    let d = &s.dnstap;
    let mut errs: Vec<(String, u64)> = s
        .packet
        .nonzero_errors()
        .into_iter()
        .map(|(r, n)| (format!("packet/{r}"), n))
        .collect();
    errs.extend(
        s.decode_errors
            .iter()
            .map(|(r, n)| (format!("dns/{}", r.as_str()), *n)),
    );
    errs.extend(
        d.nonzero_errors()
            .into_iter()
            .map(|(r, n)| (format!("dnstap/{r}"), n)),
    );
    if errs.is_empty() {
        let _ = writeln!(e, "parse errors: none");
    } else {
        let list: Vec<_> = errs.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = writeln!(e, "parse errors: {}", list.join(" "));
    }
    let p = &s.packet;
    if p.fragments_reassembled
        + p.fragment_evictions
        + p.tcp_flow_evictions
        + p.tcp_budget_evictions
        > 0
    {
        let _ = writeln!(
            e,
            "reassembly: {} datagrams from fragments, {} fragment evictions, {} tcp flow evictions, {} tcp byte-budget evictions",
            p.fragments_reassembled,
            p.fragment_evictions,
            p.tcp_flow_evictions,
            p.tcp_budget_evictions
        );
    }
    if s.late_messages > 0 {
        let _ = writeln!(
            e,
            "late messages (older than the watermark, not counted by detectors): {}",
            s.late_messages
        );
    }
    if s.refused_window_keys + s.late_tallies > 0 {
        let _ = writeln!(
            e,
            "window state: {} key tallies refused (tables full, none could fire on its own), {} tallies too late for their window",
            s.refused_window_keys, s.late_tallies
        );
    }
}

/// Alerts and the top tables.
fn summary_findings(e: &mut impl Write, s: &RunSummary) {
    if s.alerts.is_empty() {
        let _ = writeln!(e, "alerts: none");
    } else {
        let list: Vec<_> = s
            .alerts
            .iter()
            .map(|((k, st), n)| format!("{k}/{}={n}", st.as_str()))
            .collect();
        let _ = writeln!(
            e,
            "alerts: {} (still active at end: {})",
            list.join(" "),
            s.active_at_end
        );
    }
    for (title, t) in [
        ("top query names", &s.top_names),
        ("top registered domains", &s.top_domains),
        ("top clients", &s.top_clients),
    ] {
        let top = t.top(10);
        if !top.is_empty() {
            let _ = writeln!(e, "{title}:");
            for (name, n) in top {
                let _ = writeln!(e, "  {n:>10}  {name}");
            }
        }
    }
}

// ---------------------------------------------------------------- dnstap ----
// The `dnstap` command (issue 14): its arguments and its run, kept in one
// block.

#[derive(clap::Args, Debug)]
pub struct DnstapArgs {
    /// Where resolvers connect: `unix:PATH` or `tcp:HOST:PORT`; repeatable.
    #[arg(long = "listen", required = true, value_name = "ADDR")]
    pub listen: Vec<dnsmonitor::sources::dnstap_listen::ListenAddr>,
    /// Mode of unix socket files (octal).
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = parse_socket_mode)]
    pub socket_mode: u32,
    /// Seconds after which a silent connection stops holding windows open.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=dnsmonitor::config::MAX_TIMEOUT_SECS))]
    pub idle_timeout: u64,
    #[command(flatten)]
    pub common: PipelineArgs,
}

fn parse_socket_mode(s: &str) -> Result<u32, String> {
    match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "invalid socket mode `{s}`: give octal permission bits (0660)"
        )),
    }
}

/// `sensor --dnstap`: the listener as the sensor's input.
fn sensor_dnstap_input(
    args: &SensorArgs,
) -> anyhow::Result<(Box<dyn dnsmonitor::sources::FrameSource + Send>, String)> {
    use dnsmonitor::sources::dnstap_listen::{DEFAULT_IDLE_TIMEOUT, DnstapListener, ListenOptions};
    let (listener, _) = DnstapListener::bind(ListenOptions {
        listen: args.dnstap.clone(),
        socket_mode: args.socket_mode,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        metrics: None,
        stop: Some(install_stop_signals().context("signal handlers")?),
    })?;
    let what = format!("dnstap: listening on {}", listener.bound.join(", "));
    Ok((Box::new(listener), what))
}

fn dnstap(args: DnstapArgs) -> anyhow::Result<i32> {
    use dnsmonitor::sources::dnstap_listen::{DnstapListener, ListenOptions, with_listener};
    let c = &args.common;
    // Like `live`: a restarted service appends; SIGINT/SIGTERM close the
    // windows, flush and exit 0.
    let stop = install_stop_signals().context("signal handlers")?;
    // SIGHUP from now on is a reload request (handled once the run starts).
    let hup = hangup_signals()?;
    let p = prepare(c, true, stop)?;
    let (listener, counters) = DnstapListener::bind(ListenOptions {
        listen: args.listen.clone(),
        socket_mode: args.socket_mode,
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
        metrics: p.metrics.as_ref().map(|(m, _)| m.clone()),
        stop: Some(p.stop.clone()),
    })?;
    eprintln!("dnstap: listening on {}", listener.bound.join(", "));
    let run_opts = RunOptions {
        workers: c.workers as usize,
        stop: Some(p.stop.clone()),
        metrics: p.metrics.as_ref().map(|(m, _)| m.clone()),
        reload: Some(p.reload(c, hup)?),
        ..RunOptions::default()
    };
    let mut summary = dataflow::run(
        p.plan,
        Input::Single(Box::new(listener)),
        run_opts,
        p.outputs,
    )?;
    let saved = save_filters();
    summary.dnstap = with_listener(std::mem::take(&mut summary.dnstap), &counters);
    if !c.quiet {
        print_summary("dnstap", &summary, c.workers);
    }
    let status = run_status(&p.watch, &summary);
    let status = if saved { status } else { status.max(1) };
    if let Some((_, server)) = p.metrics {
        server.stop();
    }
    Ok(status)
}
