//! The real SG_IO path against a real Linux kernel: scripts/qemu-drive-test.sh boots the host's
//! kernel under QEMU (TCG) with a bd-archive image as an emulated CD-ROM on virtio-scsi and on
//! IDE, and checks detection, INQUIRY, GET CONFIGURATION, READ DISC INFORMATION, READ
//! CAPACITY, a whole-disc READ(12) against the image's SHA-256, verify from /dev/sr0, the
//! `create -D` refusal of a non-blank disc, the busy check and O_EXCL, tray eject/load, two
//! drives without a terminal, and a real CHECK CONDITION from an empty drive.
//!
//! Needs qemu-system-x86 (Debian), linux-image-amd64 and busybox-static, so it is `#[ignore]`d;
//! run explicitly (.ci/run does) without them it fails, naming what is missing.

use std::process::Command;

#[test]
#[ignore = "needs qemu-system-x86, linux-image-amd64, busybox-static and cpio (~30 s); CI runs it"]
fn real_kernel_reads_an_emulated_cd_rom_through_sg_io() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/qemu-drive-test.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_bd-archive"))
        .arg("both")
        .output()
        .expect("run scripts/qemu-drive-test.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            // Show the checks and timings in `cargo test -- --nocapture`.
            for l in stdout
                .lines()
                .filter(|l| l.starts_with("==") || l.starts_with("total") || l.contains("PASSED"))
            {
                eprintln!("{l}");
            }
        }
        Some(77) => panic!(
            "prerequisite missing: {}; this test is #[ignore]d for that reason and was run \
             explicitly (.ci/run installs the packages)",
            stdout.lines().find(|l| l.starts_with("SKIPPED")).map_or(
                "qemu drive test prerequisites missing",
                |l| l
                    .trim_start_matches("SKIPPED")
                    .trim_start_matches(':')
                    .trim()
            )
        ),
        _ => panic!(
            "qemu drive test failed ({:?}):\n{stdout}\n{stderr}",
            out.status
        ),
    }
}
