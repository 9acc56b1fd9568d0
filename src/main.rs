//! bd-archive command-line entry point: parse, dispatch, map errors to exit codes.

use bd_archive::cli::{Cli, Command};
use bd_archive::commands::{self, Ui};
use bd_archive::exit;
use clap::Parser;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::ERROR,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    bd_archive::interrupt::install();
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let result = match &cli.command {
        Command::Create(a) => commands::create::run(a, &ui),
        Command::Extract(a) => commands::extract::run(a, &ui),
        Command::List(a) => commands::list::run(a, &ui),
        Command::Verify(a) => commands::verify::run(a, &ui),
        Command::Completions(a) => commands::docs::completions(a),
        Command::Manpage(a) => commands::docs::manpage(a),
        Command::Demo(a) => commands::demo::run(a, &ui),
        Command::Drive(a) => commands::drive::run(a, &ui),
        Command::Burn(a) => commands::burn::run(a, &ui),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!(
                "error: {}",
                bd_archive::restore::terminal_text(&format!("{e:#}"))
            );
            let interrupted = e
                .downcast_ref::<bd_archive::interrupt::Interrupted>()
                .is_some()
                || bd_archive::interrupt::requested();
            std::process::exit(if interrupted {
                exit::INTERRUPTED
            } else {
                exit::ERROR
            });
        }
    }
}
