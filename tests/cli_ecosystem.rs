//! The first five minutes: demo, completions, man pages, help with examples, JSON outputs.

use std::process::Command;

use crate::common::*;

#[test]
fn demo_runs_end_to_end() {
    let t = tmp();
    let dir = t.path().join("demo");
    let o = bd(&["demo", dir.to_str().unwrap()]);
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verify exited with 1"), "{out}");
    assert!(
        out.contains("restored bit-exact despite the damage"),
        "{out}"
    );
    assert_eq!(images(&dir.join("out")).len(), 3);
    // A non-empty directory is refused.
    expect_code(&bd(&["demo", dir.to_str().unwrap()]), 3);
}

#[test]
fn bash_completion_script_is_valid_bash() {
    let o = bd(&["completions", "bash"]);
    expect_code(&o, 0);
    let t = tmp();
    let f = t.path().join("bd.bash");
    std::fs::write(&f, &o.stdout).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success());
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        expect_code(&bd(&["completions", shell]), 0);
    }
}

#[test]
fn man_pages_are_written_for_every_command() {
    let t = tmp();
    let dir = t.path().join("man");
    expect_code(&bd(&["manpage", dir.to_str().unwrap()]), 0);
    for page in [
        "bd-archive.1",
        "bd-archive-create.1",
        "bd-archive-extract.1",
        "bd-archive-verify.1",
        "bd-archive-list.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is not roff");
    }
}

#[test]
fn every_command_help_has_an_example() {
    for cmd in [
        "create",
        "extract",
        "list",
        "verify",
        "completions",
        "manpage",
        "demo",
    ] {
        let o = bd(&[cmd, "--help"]);
        expect_code(&o, 0);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Examples:"),
            "{cmd} --help has no example"
        );
    }
    let o = bd(&["--version"]);
    expect_code(&o, 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("format 2"));
}

#[test]
fn json_outputs_parse() {
    let t = tmp();
    let src = t.path().join("src");
    write(&src.join("a.txt"), b"hello");
    let out = t.path().join("out");
    expect_code(&create(&src, &out, "j", &["-b", "32M", "-y", "-q"]), 0);
    let img = &images(&out)[0];
    for args in [
        vec!["list", img.to_str().unwrap(), "--json"],
        vec!["verify", img.to_str().unwrap(), "--json"],
        vec![
            "create",
            "-s",
            src.to_str().unwrap(),
            "-o",
            t.path().join("o2").to_str().unwrap(),
            "-n",
            "j",
            "-b",
            "32M",
            "--dry-run",
            "--json",
        ],
    ] {
        let o = bd(&args);
        expect_code(&o, 0);
        let _: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
}
