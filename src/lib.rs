//! ward: the life cycle of data in stateful Postgres containers.
//!
//! Architecture (see DESIGN.md): [`main`] parses the command line ([`cli`]) and
//! calls `run`, which resolves the configuration ([`config`]) and hands
//! each subcommand to its module in [`commands`]. Commands only dispatch: the
//! work lives in the domains — [`seed`] (deterministic fake patient records),
//! [`snapshot`] (verified snapshots and safe restores of Postgres volumes),
//! [`backup`] (the scheduled backup: snapshot, copy, verify, prune, notify),
//! [`doctor`] and [`demo`] — which reach Postgres through [`pg`] and Docker
//! through [`docker`] (the only bollard user); [`target`] resolves which
//! container, volume or data directory a snapshot command works on. [`output`] is the only module
//! that prints; [`error`] maps outcomes to exit codes.

// The library's public surface is [`main`] and the few items the
// integration tests and benchmarks drive directly (`pub` below, and `pub`
// inside those modules); everything else is `pub(crate)`, and
// `unreachable_pub` (Cargo.toml) keeps it so — a `pub` item nothing outside
// can reach would hide dead code from the compiler.
pub(crate) mod backup;
pub mod check;
pub(crate) mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod django;
pub(crate) mod docker;
pub(crate) mod doctor;
pub(crate) mod error;
pub(crate) mod output;
pub mod pg;
pub(crate) mod process;
pub(crate) mod progress;
pub(crate) mod redact;
pub mod seed;
pub mod snapshot;
pub mod target;
pub(crate) mod units;

#[cfg(test)]
mod module_graph;

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command};
use config::{Config, FileConfig};
use error::{Exit, Interrupted};

/// Runs a parsed command line and returns the exit code. Errors are printed here.
/// The `ward` binary: parse the command line, set up logging, run, exit.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging(cli.global.verbose, cli.global.quiet);
    ExitCode::from(run(cli).as_u8())
}

fn run(cli: Cli) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(&anyhow::anyhow!("cannot start the async runtime: {e}"));
            return Exit::Error;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            r = dispatch(&cli) => r,
            _ = tokio::signal::ctrl_c() => {
                error::cancel();
                Err(Interrupted.into())
            }
        }
    });
    // Give work on blocking threads the chance to see the cancel and clean up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(10));
    match result {
        Ok(exit) => exit,
        Err(e) if e.downcast_ref::<snapshot::Damaged>().is_some() => {
            // Damage found in a store is a finding (exit 1), not a usage error.
            output::error(&e);
            Exit::Findings
        }
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            output::error(&anyhow::anyhow!(interrupted(&cli.command)));
            Exit::Interrupted
        }
        Err(e) => {
            output::error(&e);
            Exit::Error
        }
    }
}

/// What Ctrl-C left behind, said for the command that was stopped.
fn interrupted(command: &Command) -> &'static str {
    match command {
        Command::Seed(_) => "interrupted: nothing was written (the transaction was rolled back)",
        Command::Demo(_) => "interrupted: the demo stopped and its throwaway cluster was removed",
        Command::Doctor => "interrupted",
        Command::Snapshot(_) => {
            "interrupted: a snapshot being written was discarded, a restore in progress was rolled back, and \
             containers were started again as they were"
        }
        Command::Backup(_) => {
            "interrupted: the backup stopped; a snapshot being written or copied was discarded (what was \
             already verified in a store is kept) and containers were started again as they were"
        }
        Command::Check(_) => {
            "interrupted: the check stopped; its clones and throwaway servers were removed and the data checked \
             against was not touched"
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<Exit> {
    let file = FileConfig::load(&std::env::current_dir()?)?;
    snapshot::store::remote::configure(snapshot::store::RemoteSettings::from_file(&file.store));
    let cfg = Config::resolve(&cli.global, file);
    docker::sweep_if_reachable().await;
    // Whatever this command is, first finish or undo what killed wards left
    // on any target (and restart the containers they stopped). `snapshot
    // recover` does it for its target itself, and reports it.
    if !matches!(&cli.command, Command::Snapshot(a) if matches!(a.command, cli::SnapshotCommand::Recover(_)))
    {
        for note in snapshot::shielded(|| async { Ok(snapshot::heal_interrupted().await) }).await? {
            output::note(&note);
        }
    }
    match &cli.command {
        Command::Seed(args) => commands::seed::run(&cfg, args).await,
        Command::Demo(args) => commands::demo::run(&cfg, args).await,
        Command::Doctor => commands::doctor::run(&cfg).await,
        Command::Snapshot(args) => commands::snapshot::run(&cfg, args).await,
        Command::Check(args) => commands::check::run(&cfg, args).await,
        Command::Backup(args) => commands::backup::run(&cfg, args).await,
    }
}
