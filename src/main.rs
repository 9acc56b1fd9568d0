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
    let code = match result {
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
    };
    if ui.verbose {
        err_line(&resources_line());
    }
    code
}

/// "resources: peak memory N KiB, CPU U s user + S s system" — for bug reports and for the tests'
/// memory bounds. Peak memory is `VmHWM` of /proc/self/status: the high-water mark of this
/// program's own address space (getrusage's ru_maxrss would also count the parent's memory
/// copied before exec).
fn resources_line() -> String {
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or_else(|| "?".to_string(), |k| k.to_string());
    let (user, system) = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| {
            let secs = |t: nix::sys::time::TimeVal| {
                t.tv_sec() as f64 + f64::from(t.tv_usec() as i32) / 1e6
            };
            (secs(u.user_time()), secs(u.system_time()))
        })
        .unwrap_or((0.0, 0.0));
    format!("resources: peak memory {peak} KiB, CPU {user:.3} s user + {system:.3} s system")
}
