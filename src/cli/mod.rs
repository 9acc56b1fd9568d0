//! User-facing commands: each wires domain modules together, prints progress and maps outcomes to
//! exit codes. Nothing below this layer prints or prompts.

pub mod args;
pub mod burn;
pub mod create;
pub mod demo;
pub mod docs;
pub mod drive;
pub mod exit;
pub mod explain;
pub mod extract;
pub mod extract_drive;
pub mod list;
pub mod verify;

use bd_archive::util::escape::terminal_text;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use anyhow::{bail, Result};
use bd_archive::util::progress::{Meter, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Output settings shared by all commands.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    /// `-q`: only errors, warnings and final summaries.
    pub quiet: bool,
    /// `-v`: extra detail.
    pub verbose: bool,
}

// Every message goes through `terminal_text`: disc-derived strings (chain names, labels, file
// names) cannot reach the terminal as escape sequences.
impl Ui {
    /// Normal progress messages (stderr; hidden with -q).
    pub fn say(&self, msg: &str) {
        if !self.quiet {
            err_line(&terminal_text(msg));
        }
    }

    /// Overview lines and results meant for the user even when piped (stdout). A reader that
    /// went away (`| head`) ends the output, not the command: its verdict and exit code stand.
    pub fn info(&self, msg: &str) {
        if !stdout_closed() {
            let _ = out_line(&terminal_text(msg));
        }
    }

    /// Warnings (stderr, always).
    pub fn warn(&self, msg: &str) {
        err_line(&format!("warning: {}", terminal_text(msg)));
    }

    /// Detail shown with -v.
    pub fn detail(&self, msg: &str) {
        if self.verbose {
            err_line(&terminal_text(msg));
        }
    }
}

static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once a write to stdout found the reader gone (EPIPE).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes `text` to stdout. A broken pipe is returned as an error (so a long listing stops at once;
/// `main` ends such a run quietly) and remembered, so later output is skipped.
pub fn out(text: &[u8]) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    let r = o.write_all(text).and_then(|()| o.flush());
    if let Err(e) = &r {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    r
}

/// [`out`] with a newline.
pub fn out_line(line: &str) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(line.len() + 1);
    b.extend_from_slice(line.as_bytes());
    b.push(b'\n');
    out(&b)
}

/// One line to stderr; a closed stderr is not worth a panic (unlike `eprintln!`).
pub fn err_line(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// The one line an error is printed as: its chain joined by ": ", each cause said once. Library
/// errors often put their OS error in their own message *and* expose it as their source, which
/// `{:#}` then printed twice ("… (os error 2) (check the -s path): No such file … (os error 2)").
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// True when `e`'s chain holds a broken pipe: the reader of our output went away (`| head`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A progress bar on stderr, hidden when stderr is not a terminal or with -q.
pub fn progress_bar(ui: &Ui, total: Option<u64>, what: &str) -> ProgressBar {
    let pb = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    if ui.quiet || !std::io::stderr().is_terminal() {
        pb.set_draw_target(ProgressDrawTarget::hidden());
        return pb;
    }
    let style = if total.is_some() {
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
        )
    } else {
        ProgressStyle::with_template("{prefix} {spinner} {pos} {msg}")
    };
    if let Ok(s) = style {
        pb.set_style(s.progress_chars("=> "));
    }
    pb.set_prefix(what.to_string());
    pb
}

/// The engines report through [`Progress`]; the command line shows it as before.
impl Progress for Ui {
    fn step(&self, msg: &str) {
        self.say(msg);
    }
    fn result(&self, msg: &str) {
        self.info(msg);
    }
    fn warn(&self, msg: &str) {
        Ui::warn(self, msg);
    }
    fn detail(&self, msg: &str) {
        Ui::detail(self, msg);
    }
    fn meter(&self, total: Option<u64>, what: &str) -> Arc<dyn Meter> {
        Arc::new(Bar(progress_bar(self, total, what)))
    }
}

/// An indicatif bar as an engine's [`Meter`].
struct Bar(ProgressBar);

impl Meter for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_position(&self, n: u64) {
        self.0.set_position(n);
    }
    fn set_message(&self, msg: String) {
        self.0.set_message(msg);
    }
    fn println(&self, line: String) {
        self.0.println(terminal_text(&line));
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Asks a yes/no question (default yes). Without a terminal it fails, naming the flag that answers it.
pub fn confirm(question: &str, flag: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question} needs an answer but there is no terminal; pass {flag} to answer yes");
    }
    eprint!("{question} [Y/n] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line)? == 0 {
        bail!("no answer (end of input); pass {flag} to answer yes");
    }
    Ok(!matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "n" | "no"
    ))
}

/// Parses `--memory` (K/M/G suffixes) or picks the default: min(25 % of RAM, 768 MiB), at least 64 MiB.
pub fn parse_memory(s: Option<&str>) -> Result<u64> {
    if let Some(s) = s {
        let Some(v) = bd_archive::util::capacity::parse_size(s) else {
            bail!("--memory {s}: not a size; use e.g. 512M or 2G");
        };
        if v < 64 << 20 {
            bail!("--memory {s}: at least 64M is needed");
        }
        // The user vouches for this much: catalogs and indexes may use it too.
        bd_archive::format::records::set_decode_budget(v);
        return Ok(v);
    }
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(4 << 30);
    // 768 MiB keeps the whole process under the 1 GiB ceiling of DESIGN.md; more only with --memory.
    Ok((ram / 4).clamp(64 << 20, 768 << 20))
}
