//! `completions` and `manpage`: generated from the same clap definition the parser uses, so they
//! never drift from the real flags.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::args::{Cli, CompletionsArgs, ManpageArgs};

/// Prints a completion script for the chosen shell.
pub fn completions(args: &CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, BIN, &mut script);
    if args.shell == clap_complete::Shell::Bash {
        script = fix_bash_case_arms(&script);
    }
    super::out(&script)?;
    Ok(crate::cli::exit::OK)
}

const BIN: &str = "bd-archive";

/// clap_complete's bash generator mangles a hyphenated binary name two ways: the state variable
/// becomes `bd__archive__subcmd__create` ('-' → "__"), but the case arms that offer a
/// subcommand's options read `bd__subcmd__archive__subcmd__create` ('-' → "__subcmd__"), so no
/// option of a subcommand was ever completed. Renaming the arms to the state's spelling fixes it
/// (the tests load the script in bash and complete `bd-archive create --`).
fn fix_bash_case_arms(script: &[u8]) -> Vec<u8> {
    let wrong = BIN.replace('-', "__subcmd__");
    let right = BIN.replace('-', "__");
    String::from_utf8_lossy(script)
        .replace(&wrong, &right)
        .into_bytes()
}

/// Writes man pages into a directory, or the main page to stdout.
pub fn manpage(args: &ManpageArgs) -> Result<i32> {
    let cmd = Cli::command();
    match &args.dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            super::out(&page)?;
        }
        Some(dir) => write_pages(cmd, dir)?,
    }
    Ok(crate::cli::exit::OK)
}

fn write_pages(cmd: clap::Command, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![(String::from("bd-archive"), cmd.clone())];
    for sub in cmd.get_subcommands() {
        let name = format!("bd-archive-{}", sub.get_name());
        // clap names are 'static; the few page names are leaked once per run of `manpage`.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        pages.push((name, sub.clone().name(leaked)));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
