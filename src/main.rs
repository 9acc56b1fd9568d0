//! bd-archive command-line entry point: parse, dispatch, map errors to exit codes.

mod cli;

use bd_archive::util::interrupt;
use clap::Parser;
use cli::args::{Cli, Command};
use cli::{exit, Ui};

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
    interrupt::install();
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let result = match &cli.command {
        Command::Create(a) => cli::create::run(a, &ui),
        Command::Extract(a) => cli::extract::run(a, &ui),
        Command::List(a) => cli::list::run(a, &ui),
        Command::Verify(a) => cli::verify::run(a, &ui),
        Command::Completions(a) => cli::docs::completions(a),
        Command::Manpage(a) => cli::docs::manpage(a),
        Command::Demo(a) => cli::demo::run(a, &ui),
        Command::Drive(a) => cli::drive::run(a, &ui),
        Command::Burn(a) => cli::burn::run(a, &ui),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!(
                "error: {}",
                bd_archive::util::escape::terminal_text(&format!("{e:#}"))
            );
            let interrupted =
                e.downcast_ref::<interrupt::Interrupted>().is_some() || interrupt::requested();
            std::process::exit(if interrupted {
                exit::INTERRUPTED
            } else {
                exit::ERROR
            });
        }
    }
}
