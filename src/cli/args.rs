//! Command-line definition (clap derive). Flags follow the Python bd-archive so its users feel at
//! home; see DESIGN.md §6 for the binding contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Archive a directory tree to Blu-ray discs with whole-disc error correction, and get it back.
#[derive(Parser, Debug)]
#[command(name = "bd-archive", version = bd_archive::version_string(), propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok · 1 finished with damage (repairable / some files not bit-exact / \
source files unreadable or changed while read) · \
2 verify: not repairable · 3 error · 130 interrupted"
)]
pub struct Cli {
    /// Print only errors and the final summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Scan SRC and build one disc image per disc in OUT/images (no burning).
    #[command(
        after_help = "Examples:\n  bd-archive create -s ~/Photos -o /staging/photos -n photos -b bd25\n  \
bd-archive create -s ~/Photos -o /tmp/p -n photos -b 64M -y --dry-run"
    )]
    Create(CreateArgs),
    /// Restore files from disc images (in any order), repairing damage, checking every file.
    #[command(
        after_help = "Examples:\n  bd-archive extract -o ~/restored /staging/photos/images\n  \
bd-archive extract -o ~/restored photos-gen0001-disc0002.iso photos-gen0001-disc0001.iso --only 2024/holiday"
    )]
    Extract(ExtractArgs),
    /// List the entries of an archive: from a catalog file, disc images or a directory of images.
    #[command(
        after_help = "Examples:\n  bd-archive list /staging/photos/photos-gen1.catalog\n  bd-archive list photos-gen0002-disc0003.iso --json"
    )]
    List(ListArgs),
    /// Check discs or images: exit 0 intact, 1 damaged but repairable, 2 not repairable.
    #[command(
        after_help = "Examples:\n  bd-archive verify /staging/photos/images\n  \
bd-archive verify photos-gen0001-disc0001.iso --repair -o fixed.iso\n  bd-archive verify photos-gen0001-disc0001.iso --catalog photos-gen1.catalog"
    )]
    Verify(VerifyArgs),
    /// Burn images to blank BD-R discs, each read back and checked.
    #[command(
        after_help = "Examples:\n  bd-archive burn -i /staging/photos\n  bd-archive burn -i /staging/photos -D /dev/sr0 --start 3"
    )]
    Burn(BurnArgs),
    /// Show the optical drive and the disc in it (model, medium, status, capacity); open or
    /// close the tray; copy a whole disc to a file.
    #[command(
        after_help = "Examples:\n  bd-archive drive\n  bd-archive drive -D /dev/sr1 --json\n  \
bd-archive drive --eject\n  bd-archive drive --read-to disc.iso"
    )]
    Drive(DriveArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  bd-archive completions bash > /etc/bash_completion.d/bd-archive\n  \
bd-archive completions zsh > ~/.zfunc/_bd-archive"
    )]
    Completions(CompletionsArgs),
    /// Write man pages (bd-archive.1 and one per command) into DIR, or print the main one.
    #[command(
        after_help = "Examples:\n  bd-archive manpage /usr/local/share/man/man1\n  bd-archive manpage | man -l -"
    )]
    Manpage(ManpageArgs),
    /// Show the whole product in a minute: a 3-disc set, one disc damaged, verified, restored.
    #[command(
        after_help = "Examples:\n  bd-archive demo\n  bd-archive demo -q\n  bd-archive demo /tmp/bd-demo"
    )]
    Demo(DemoArgs),
}

/// `completions` arguments.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// Shell to generate for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `manpage` arguments.
#[derive(Args, Debug)]
pub struct ManpageArgs {
    /// Directory to write the pages into (default: print bd-archive.1 to stdout).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to put the sample tree, the images and the restore (kept). Default: a new
    /// temporary directory, removed at the end unless --keep.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the temporary directory (about 230 MB) to look at afterwards.
    #[arg(long = "keep")]
    pub keep: bool,
}

/// Compression choices (`-c`). The seed's lzma/lz4/gzip/bzip2 are refused with a hint.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionArg {
    /// zstd, level from -l (default 3).
    Zstd,
    /// Store chunks uncompressed (still as zstd frames).
    None,
    /// Not supported; use zstd with -l 19 for a high ratio.
    Lzma,
    /// Not supported; use zstd with -l 1 for speed.
    Lz4,
    /// Not supported; use zstd.
    Gzip,
    /// Not supported; use zstd.
    Bzip2,
}

/// `create` flags.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Source directory to archive.
    #[arg(short = 's', long = "source", value_name = "SRC")]
    pub source: PathBuf,
    /// Output directory: images go to OUT/images/<NAME>-gen<GGGG>-disc<NNNN>.iso, the catalog to OUT/<NAME>-gen<G>.catalog.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Archive (chain) name: UTF-8, at most 64 bytes, no '/', NUL or control characters.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    pub name: String,
    /// Disc capacity: bytes, K/M/G (KiB/MiB/GiB), or bd25, bd50, bd100, bd128.
    #[arg(short = 'b', long = "bytes", value_name = "BYTES")]
    pub bytes: Option<String>,
    /// Optical drive with a blank BD-R whose capacity sizes the discs (when -b is not given).
    #[arg(short = 'D', long = "device", value_name = "DEV")]
    pub device: Option<PathBuf>,
    /// Compression.
    #[arg(short = 'c', long = "compression", value_enum, default_value_t = CompressionArg::Zstd)]
    pub compression: CompressionArg,
    /// zstd level 1..=22 (default 3).
    #[arg(short = 'l', long = "level", value_name = "LEVEL")]
    pub level: Option<i32>,
    /// Reed-Solomon redundancy: percent of each disc's sectors that may be lost (scattered or in
    /// bursts) and still be repaired, 1..=50 (default 10; costs about 13 % extra space).
    #[arg(short = 'r', long = "redundancy", value_name = "PCT", default_value_t = bd_archive::fec::DEFAULT_REDUNDANCY_PCT)]
    pub redundancy: u32,
    /// Make an incremental generation of the chain: only what changed since the generation in
    /// this catalog (or the newest <NAME>-genG.catalog in this OUT dir, or on the previous
    /// generation's last disc image, or among a directory of its images) is stored; deletions
    /// are recorded. A seed (Python bd-archive) catalogue or disc continues that chain.
    #[arg(long = "base", value_name = "CATALOG")]
    pub base: Option<PathBuf>,
    /// Leave the newest new files out of this generation (listed in OUT/deferred-files.txt) when
    /// that saves a disc whose fill would be under PCT percent; 0 (default) defers nothing.
    #[arg(long = "min-last-disc-fill", value_name = "PCT", default_value_t = 0)]
    pub min_last_disc_fill: u32,
    /// Put this generation on the free space of an unburned last disc image of the previous
    /// generation (it becomes the base); a new copy is written to OUT/images, the given image is
    /// left untouched.
    #[arg(long = "pack-with", value_name = "IMAGE")]
    pub pack_with: Option<PathBuf>,
    /// Compression ratio for the preview (compressed/original, e.g. 0.6) instead of sampling.
    #[arg(long = "ratio", value_name = "R", conflicts_with = "sample")]
    pub ratio: Option<f64>,
    /// Directory to sample for the compression ratio instead of the source itself.
    #[arg(long = "sample", value_name = "DIR")]
    pub sample: Option<PathBuf>,
    /// Accepted for the seed's scripts: create writes no transient files (every byte goes
    /// straight into the images); DIR is only kept out of the scan.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// Print the overview and exit without writing anything.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// With --dry-run: print the overview as JSON.
    #[arg(long = "json", requires = "dry_run")]
    pub json: bool,
    /// Do not copy the bd-archive binary onto each disc.
    #[arg(long = "no-binary")]
    pub no_binary: bool,
    /// Fill each disc's free space with extra parity.
    #[arg(long = "fill-parity")]
    pub fill_parity: bool,
    /// Write P parity discs after the generation's data discs: any P discs of the set may then
    /// be lost (or damaged beyond their own repair data) and are rebuilt bit for bit. Not with
    /// --pack-with.
    #[arg(long = "parity-discs", value_name = "P", default_value_t = 0)]
    pub parity_discs: u32,
    /// Memory budget for the FEC passes (e.g. 512M, 2G; default min(25% of RAM, 768M)).
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,
    /// With --base: compare the content (SHA-256) of files whose size and mtime match the base,
    /// instead of trusting size and mtime.
    #[arg(long = "checksum")]
    pub checksum: bool,
    /// Allow an archive or incremental generation with no changes.
    #[arg(long = "allow-empty")]
    pub allow_empty: bool,
    /// Continue an interrupted create in the same OUT with the same options: complete images
    /// are kept (checked), the rest is rebuilt with the same chain id.
    #[arg(long = "resume")]
    pub resume: bool,
    /// Leave out paths matching PATTERN (as tar: `*`, `?`, `[…]`; without '/' it is tried on
    /// every name, with '/' on the path below SRC); repeat for several.
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// Read --exclude patterns from FILE, one per line (empty lines and lines starting with '#'
    /// are skipped).
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_file: Option<std::path::PathBuf>,
    /// Leave out the contents of directories holding a valid CACHEDIR.TAG (the tag is kept).
    #[arg(long = "exclude-caches")]
    pub exclude_caches: bool,
    /// Do not descend into directories on other filesystems (the mount points are recorded).
    #[arg(long = "one-file-system")]
    pub one_file_system: bool,
}

/// `extract` flags.
#[derive(Args, Debug)]
pub struct ExtractArgs {
    /// Output directory (created if missing).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: PathBuf,
    /// Image files, directories of images, or copies of disc contents, in any order.
    #[arg(value_name = "SOURCE", value_hint = clap::ValueHint::AnyPath)]
    pub sources: Vec<PathBuf>,
    /// Work directory for repaired sectors (default OUT/.bd-archive-work).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Optical drive to read the discs from, one at a time (default: the only drive, or ask).
    #[arg(short = 'D', long = "device", value_name = "DEV", value_hint = clap::ValueHint::FilePath)]
    pub device: Option<PathBuf>,
    /// Drive reads: attempts per unreadable sector the FEC cannot do without (0 = none).
    #[arg(long = "retries", value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Drive reads: read speed in x (1x BD = 4.5 MB/s); slower often reads damaged discs better.
    #[arg(long = "read-speed", value_name = "X")]
    pub read_speed: Option<u32>,
    /// Restore only this path (and everything below it); repeat for several paths. `./path`
    /// is accepted, and patterns (`*`, `?`, `[…]`; `*` also crosses '/'): `--only '*.jpg'`.
    #[arg(long = "only", value_name = "PATH")]
    pub only: Vec<String>,
    /// Restore the state as of generation N.
    #[arg(long = "generation", value_name = "N")]
    pub generation: Option<u32>,
    /// When one generation is given as two different sets (two create runs with the same
    /// --base), restore from the set with this id (named in the refusal: hex digits, any prefix
    /// of 4 or more that names one set; for discs of format version 1 the set's creation time).
    #[arg(long = "set", value_name = "ID")]
    pub set: Option<String>,
    /// Replace existing files in OUT.
    #[arg(long = "overwrite")]
    pub overwrite: bool,
    /// Continue an interrupted extract into the same OUT: files already restored and verified
    /// (size, mtime, SHA-256) are kept; everything else of the archive is restored (replacing).
    #[arg(long = "resume")]
    pub resume: bool,
    /// Restore owners (default when running as root).
    #[arg(long = "same-owner")]
    pub same_owner: bool,
    /// Recreate FIFOs and device nodes.
    #[arg(long = "special-files")]
    pub special_files: bool,
    /// Memory budget for FEC repair (e.g. 512M).
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,
}

/// `list` flags.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Catalog files (of one chain: the newest is listed), disc images, or directories of images.
    #[arg(value_name = "SOURCE|CATALOG", required = true)]
    pub sources: Vec<PathBuf>,
    /// JSON output (one object with an "entries" array).
    #[arg(long = "json")]
    pub json: bool,
    /// With images of two different sets of one generation: list the set with this id (see
    /// `extract --set`).
    #[arg(long = "set", value_name = "ID")]
    pub set: Option<String>,
    /// Memory budget for FEC repair of damaged images and for the catalogs and indexes read
    /// (e.g. 2G; default 512M for records, min(25% of RAM, 768M) for repair): raise it for a
    /// catalog of many millions of entries.
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,
}

/// `verify` flags.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Image files, directories of images or block devices.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<PathBuf>,
    /// Optical drive to verify the disc in (default with no TARGET: the only drive, or ask).
    #[arg(short = 'D', long = "device", value_name = "DEV")]
    pub device: Option<PathBuf>,
    /// Drive reads: GNU ddrescue mapfile of what was read; the sectors read are kept in the .iso
    /// beside it, and a later run (this or another drive) reads only what is still missing.
    #[arg(long = "map", value_name = "FILE.map")]
    pub map: Option<PathBuf>,
    /// Drive reads: attempts per unreadable sector the FEC cannot do without (0 = none).
    #[arg(long = "retries", value_name = "N", default_value_t = 3)]
    pub retries: u32,
    /// Drive reads: read speed in x (1x BD = 4.5 MB/s); slower often reads damaged discs better.
    #[arg(long = "read-speed", value_name = "X")]
    pub read_speed: Option<u32>,
    /// Write a repaired copy (needs -o).
    #[arg(long = "repair", requires = "output")]
    pub repair: bool,
    /// Where --repair writes: FIXED.iso for one target, or a directory.
    #[arg(short = 'o', long = "output", value_name = "FIXED")]
    pub output: Option<PathBuf>,
    /// JSON report.
    #[arg(long = "json")]
    pub json: bool,
    /// Memory budget for repair (e.g. 512M).
    #[arg(long = "memory", value_name = "SIZE")]
    pub memory: Option<String>,
    /// The generation's catalog: its <NAME>-gen<G>.catalog file, the generation's last disc
    /// (image) that holds it, or a directory of its images (or its OUT dir). When a broken disc's
    /// own index is destroyed, its lost files are listed from the catalog's chunk table. Without
    /// it, a .catalog beside the images/ directory of an OUT dir given as TARGET is used, or the
    /// catalog on another disc given.
    #[arg(long = "catalog", value_name = "CAT")]
    pub catalog: Option<PathBuf>,
    /// Drive reads of a parity set (the discs inserted one by one): where the copies of the discs
    /// go, with their mapfiles (kept, so a later run reads only what is missing); default: a
    /// temporary directory, removed afterwards.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<PathBuf>,
}

/// `burn` flags.
#[derive(Args, Debug)]
pub struct BurnArgs {
    /// Directory made by create (holds images/<NAME>-gen<GGGG>-disc<NNNN>.iso, burned in name order).
    #[arg(short = 'i', long = "input", value_name = "OUT")]
    pub input: PathBuf,
    /// Optical drive.
    #[arg(short = 'D', long = "device", value_name = "DEV")]
    pub device: Option<PathBuf>,
    /// Write speed multiplier.
    #[arg(short = 'S', long = "speed")]
    pub speed: Option<String>,
    /// Start from disc N.
    #[arg(long = "start", default_value_t = 1)]
    pub start: u32,
    /// Skip the read-back verify.
    #[arg(long = "no-verify")]
    pub no_verify: bool,
    /// Skip the capacity check.
    #[arg(long = "skip-fit-check")]
    pub skip_fit_check: bool,
    /// Do not ask.
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
}

/// `drive` flags.
#[derive(Args, Debug)]
pub struct DriveArgs {
    /// Optical drive (default: the only one, or a choice when there are several).
    #[arg(short = 'D', long = "device", value_name = "DEV")]
    pub device: Option<PathBuf>,
    /// Open the tray.
    #[arg(long = "eject", conflicts_with_all = ["load", "read_to"])]
    pub eject: bool,
    /// Close the tray and wait for the disc.
    #[arg(long = "load")]
    pub load: bool,
    /// Copy every readable sector of the disc to FILE (plain READ(12), no retries) and print
    /// its SHA-256; for damaged discs use verify/extract, which retry and repair.
    #[arg(long = "read-to", value_name = "FILE")]
    pub read_to: Option<PathBuf>,
    /// JSON output.
    #[arg(long = "json")]
    pub json: bool,
}
