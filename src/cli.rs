//! Command line: argument parsing (clap) and the human-facing printing of
//! results. No detection logic here.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use dnsmonitor::config::Plan;
use dnsmonitor::dataflow::{self, Outputs, RunOptions, RunSummary, Speed};
use dnsmonitor::packet::PacketError;
use dnsmonitor::sinks::{JsonLinesAlerts, open_output};
use dnsmonitor::time::rfc3339;

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
    /// Validate a pipeline file (and the blocklists it names).
    Check {
        /// The pipeline TOML file.
        pipeline: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng), replayed in the order given.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Pipeline file (default: the built-in pipelines/default.toml).
    #[arg(long, short = 'p')]
    pub pipeline: Option<PathBuf>,
    /// Add a blocklist file (any supported format); repeatable.
    #[arg(long = "blocklist", short = 'b')]
    pub blocklists: Vec<PathBuf>,
    /// Where alerts go: a file, or `-` for standard output.
    #[arg(long, default_value = "-")]
    pub alerts: PathBuf,
    /// Write one JSON line per DNS message to a file, or `-` for standard output.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Worker threads.
    #[arg(long, short = 'w', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Replay pace: `max` (as fast as possible), `1x` (recorded pace), `10x`, ...
    #[arg(long, default_value = "max")]
    pub speed: Speed,
    /// No progress bar and no summary on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Check { pipeline } => check(&pipeline),
        Command::Replay(args) => replay(args),
    }
}

fn load_plan(pipeline: Option<&PathBuf>, lists: &[PathBuf]) -> anyhow::Result<Plan> {
    let plan = match pipeline {
        Some(p) => Plan::from_file(p, lists),
        None => Plan::default_plan(lists),
    };
    plan.map_err(|e| anyhow::anyhow!("invalid pipeline:\n{e}"))
}

fn check(pipeline: &std::path::Path) -> anyhow::Result<i32> {
    match Plan::from_file(pipeline, &[]) {
        Ok(plan) => {
            let kinds: Vec<_> = plan.detectors.iter().map(|d| d.kind().as_str()).collect();
            println!(
                "{}: ok: window {} s sliding every {} s, detectors: {}",
                pipeline.display(),
                plan.window.size_us() / 1_000_000,
                plan.window.slide_us / 1_000_000,
                kinds.join(", ")
            );
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
            Ok(1)
        }
    }
}

fn replay(args: ReplayArgs) -> anyhow::Result<i32> {
    let plan = Arc::new(load_plan(args.pipeline.as_ref(), &args.blocklists)?);
    let alerts = open_output(&args.alerts).context("alert output")?;
    let events = match &args.events {
        Some(p) => Some(open_output(p).context("event output")?),
        None => None,
    };
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let opts = RunOptions {
        workers: args.workers as usize,
        speed: args.speed,
        progress,
        stop: None,
    };
    let outputs = Outputs {
        alerts: Box::new(JsonLinesAlerts::new(alerts)),
        events,
    };
    let summary = dataflow::replay(plan, args.files.clone(), opts, outputs)?;
    if !args.quiet {
        print_summary(&summary, args.workers);
    }
    Ok(0)
}

fn print_summary(s: &RunSummary, workers: u16) {
    let mut e = std::io::stderr().lock();
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(e, "--- dnsmonitor replay summary ---");
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
    let _ = writeln!(
        e,
        "dns messages: {} ({} queries, {} responses; {} udp, {} tcp); not dns: {} packets",
        s.dns_messages,
        s.queries,
        s.responses,
        s.packet.udp_messages,
        s.packet.tcp_messages,
        s.packet.not_dns
    );
    let mut errs: Vec<(String, u64)> = PacketError::counts(&s.packet)
        .into_iter()
        .map(|(r, n)| (format!("packet/{r}"), n))
        .collect();
    errs.extend(
        s.decode_errors
            .iter()
            .map(|(r, n)| (format!("dns/{}", r.as_str()), *n)),
    );
    if errs.is_empty() {
        let _ = writeln!(e, "parse errors: none");
    } else {
        let list: Vec<_> = errs.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = writeln!(e, "parse errors: {}", list.join(" "));
    }
    if s.packet.fragments_reassembled + s.packet.fragment_evictions + s.packet.tcp_flow_evictions
        > 0
    {
        let _ = writeln!(
            e,
            "reassembly: {} datagrams from fragments, {} fragment evictions, {} tcp flow evictions",
            s.packet.fragments_reassembled,
            s.packet.fragment_evictions,
            s.packet.tcp_flow_evictions
        );
    }
    if s.late_messages > 0 {
        let _ = writeln!(
            e,
            "late messages (older than the watermark, not counted by detectors): {}",
            s.late_messages
        );
    }
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
    let top = s.top_names.top(10);
    if !top.is_empty() {
        let _ = writeln!(e, "top query names:");
        for (name, n) in top {
            let _ = writeln!(e, "  {n:>10}  {name}");
        }
    }
    for (p, msg) in &s.broken_files {
        let _ = writeln!(e, "warning: {} ended early: {msg}", p.display());
    }
}
