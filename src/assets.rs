//! Packaging assets generated from the argument definitions themselves, so
//! they never drift from `--help`: man pages (clap_mangen: `dnsmonitor.1`
//! and one `dnsmonitor-COMMAND.1` per command) and shell completions
//! (clap_complete: bash, zsh, fish). `dnsmonitor assets DIR` (a hidden
//! command) writes them; scripts/package.sh runs it before `cargo deb`.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

/// Write `DIR/man/*.1` and `DIR/completions/{dnsmonitor.bash,_dnsmonitor,dnsmonitor.fish}`.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    let man = dir.join("man");
    let comp = dir.join("completions");
    for d in [&man, &comp] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let cmd = crate::cli::Cli::command();
    page(&man, "dnsmonitor", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dnsmonitor-{}", sub.get_name());
        page(&man, &name, sub.clone().display_name(name.clone()))?;
    }
    for (shell, file) in [
        (Shell::Bash, "dnsmonitor.bash"),
        (Shell::Zsh, "_dnsmonitor"),
        (Shell::Fish, "dnsmonitor.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "dnsmonitor", &mut out);
        let p = comp.join(file);
        std::fs::write(&p, out).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let p = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("rendering a man page")?;
    std::fs::write(&p, out).with_context(|| format!("cannot write {}", p.display()))
}
