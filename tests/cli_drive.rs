//! `drive` and `create -D` without optical hardware: every way of pointing at something that is
//! not a drive ends in one clear `error:` line and exit 3. (The real SG_IO path against a real
//! kernel is tests/qemu_drive.rs.)

use crate::common::*;

#[test]
fn drive_on_things_that_are_not_drives() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("disc.iso");
    std::fs::write(&file, vec![0u8; 8192]).unwrap();
    let f = file.to_str().unwrap();
    for (dev, want) in [
        (f, "is not a device"),
        ("/dev/null", "is not a SCSI/MMC device"),
        ("/nonexistent/sr9", "no such device"),
        ("sim:/nonexistent", "no drive.json"),
    ] {
        let o = bd(&["drive", "-D", dev]);
        expect_code(&o, 3);
        let e = stderr(&o);
        assert!(e.starts_with("error: ") && e.contains(want), "{dev}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{dev}: {e}");
    }
}

#[test]
#[ignore = "needs a machine without an optical drive (/sys/block/sr*); CI runs it"]
fn drive_without_any_drive_names_dash_d() {
    require_no_optical_drive();
    let o = bd(&["drive"]);
    expect_code(&o, 3);
    let e = stderr(&o);
    assert!(
        e.contains("no optical drive found") && e.contains("-D /dev/srN"),
        "{e}"
    );
}

#[test]
fn create_dash_d_needs_a_drive_with_a_blank_disc() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), "hello").unwrap();
    let out = t.path().join("out");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let r = bd(&[
        "create",
        "-s",
        s,
        "-o",
        o,
        "-n",
        "t",
        "-D",
        "/dev/null",
        "-y",
    ]);
    expect_code(&r, 3);
    assert!(
        stderr(&r).contains("/dev/null: is not a SCSI/MMC device"),
        "{}",
        stderr(&r)
    );
    assert!(
        !out.join("images").exists(),
        "nothing may be written before the size is known"
    );
    // Neither -b nor -D: the message names both.
    let r = bd(&["create", "-s", s, "-o", o, "-n", "t", "-y"]);
    expect_code(&r, 3);
    let e = stderr(&r);
    assert!(e.contains("-b bd25") && e.contains("-D DEV"), "{e}");
    // -b wins over -D: no drive is touched.
    let r = bd(&[
        "create",
        "-s",
        s,
        "-o",
        o,
        "-n",
        "t",
        "-b",
        "32M",
        "-D",
        "/dev/null",
        "-y",
    ]);
    expect_code(&r, 0);
}
