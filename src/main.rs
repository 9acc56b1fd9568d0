//! bd-archive command-line entry point: parse, dispatch, map outcomes to exit codes (the one place
//! that does).

mod cli;

use bd_archive::util::interrupt;
use clap::Parser;
use cli::args::{Cli, Command};
use cli::{err_line, error_line, exit, is_broken_pipe, Ui};

fn main() {
    std::process::exit(try_main());
}

/// Runs the command and returns the process's exit code. A reader that went away (`| head`,
/// `| less` quit early, `| grep -m1`) ends the run quietly: exit 0, like ripgrep and cat.
fn try_main() -> i32 {
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
            return code;
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
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => exit::OK,
        Err(e) => {
            err_line(&format!(
                "error: {}",
                bd_archive::util::escape::terminal_text(&error_line(&e))
            ));
            let interrupted =
                e.downcast_ref::<interrupt::Interrupted>().is_some() || interrupt::requested();
            if interrupted {
                exit::INTERRUPTED
            } else {
                exit::ERROR
            }
        }
    }
}
