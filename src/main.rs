//! The `dnsmonitor` binary: parse arguments, run, print errors with their
//! causes, exit with a status (`cli::EXIT_*`: 0 ok, 1 runtime failure,
//! 2 usage or configuration error, 3 partial input).

mod assets;
mod cli;
mod cluster_cmd;

use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for people; logs in files and pipes stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DNSMONITOR_LOG")
                // lapin logs what we report ourselves (with the password hidden).
                .unwrap_or_else(|_| "warn,lapin=off".into()),
        )
        .init();
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(cli::exit_status(&e));
        }
    }
}
