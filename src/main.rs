//! The `ward` binary: parse the command line, set up logging, run, exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = ward::cli::Cli::parse();
    ward::output::init_logging(cli.global.verbose, cli.global.quiet);
    let code = ward::run(cli);
    ExitCode::from(code.as_u8())
}
