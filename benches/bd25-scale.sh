#!/usr/bin/env bash
# BD-25 scale, by hand (not in CI; needs ~30 GB of disk in BD25_DIR, default /tmp/bd25-scale):
# 2 GB of random files + a 20 GiB mostly-sparse file archived with -c none to BD-25 images (a full
# 25 GB disc 1 and a small disc 2); 3 % of disc 1 overwritten with random runs of 1-64 sectors;
# verify (exit 1), verify --repair (sha256 equal to the undamaged image), extract of both discs
# checked file by file against the source. Prints wall time and peak RSS of each step.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bd="$PWD/target/release/bd-archive"
W="${BD25_DIR:-/tmp/bd25-scale}"; mkdir -p "$W"
cd $W && rm -rf src out fixed.iso x
mkdir -p src
python3 - <<'PY'
import os, random
random.seed(25)
for i in range(20):
    with open(f'src/photo{i:02}.raw', 'wb') as f:
        f.write(random.randbytes(100_000_000))
# A 20 GiB file, mostly holes, with 1 MB of random data every GiB.
with open('src/big.img', 'wb') as f:
    f.truncate(20 << 30)
    for g in range(20):
        f.seek(g << 30); f.write(random.randbytes(1_000_000))
PY
t() { local name=$1; shift; /usr/bin/time -f "$name: %e s wall, %M KB peak RSS, exit %x" "$@"; }
t create $bd create -s src -o out -n bd25 -b bd25 -c none -y -q --no-binary
img=out/images/bd25-gen0001-disc0001.iso
ls -l $img
orig=$(sha256sum $img | cut -d' ' -f1)
python3 - "$img" <<'PY'
import os, random, sys
p = sys.argv[1]
n = os.path.getsize(p) // 2048
random.seed(3)
hit = 0
with open(p, 'r+b') as f:
    while hit < n * 3 // 100:
        s = random.randrange(0, n - 64); l = random.randint(1, 64)
        f.seek(s * 2048); f.write(random.randbytes(l * 2048)); hit += l
print(f"overwrote with random bytes {hit} of {n} sectors ({100*hit/n:.2f} %) in runs of 1-64")
PY
t verify $bd verify $img
t repair $bd verify --repair -o fixed.iso $img
[ "$(sha256sum fixed.iso | cut -d' ' -f1)" = "$orig" ] && echo "repaired image: identical to the original (sha256)"
rm -f fixed.iso
t extract $bd extract -q -o x out/images
(cd src && sha256sum * ) > /tmp/bd25.src.sha
(cd x && sha256sum -c --quiet /tmp/bd25.src.sha) && echo "restore: every file's sha256 equals the source"
du -sh x src $img
