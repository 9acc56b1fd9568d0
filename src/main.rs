//! bd-archive command-line entry point: parse, dispatch, map outcomes to exit codes (the one place
//! that does).

use bd_archive::cli::{Cli, Command};
use bd_archive::commands::{self, err_line, is_broken_pipe, Ui};
use bd_archive::exit;
use clap::Parser;

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
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => exit::OK,
        Err(e) => {
            err_line(&format!("error: {e:#}"));
            let interrupted = e
                .downcast_ref::<bd_archive::interrupt::Interrupted>()
                .is_some()
                || bd_archive::interrupt::requested();
            if interrupted {
                exit::INTERRUPTED
            } else {
                exit::ERROR
            }
        }
    }
}
