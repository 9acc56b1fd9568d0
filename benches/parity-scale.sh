#!/usr/bin/env bash
# Parity discs at a few GB, by hand (not in CI; needs ~4 × PARITY_GB GB of disk in PARITY_DIR,
# default /tmp/parity-scale). PARITY_GB GB (default 3) of random files archived with -c none to
# -b PARITY_DISC (default 1G) images with --parity-discs 1; prints:
#   - the parity step's own time (create -v: "parity: column code of … in X s") and the time of one
#     `cat` of the data images (both from the page cache when RAM holds them: compare like with like);
#   - create's wall time and peak RSS with and without the parity disc;
#   - the rebuild of a missing data disc (verify --repair -o DIR of the set minus disc 2): wall time,
#     peak RSS, and that the rebuilt image equals the original (sha256).
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bd="$PWD/target/release/bd-archive"
W="${PARITY_DIR:-/tmp/parity-scale}"; GB="${PARITY_GB:-3}"; DISC="${PARITY_DISC:-1G}"
mkdir -p "$W" && cd "$W" && rm -rf src out out0 set fixed
mkdir -p src
python3 - "$GB" <<'PY'
import random, sys
random.seed(20)
gb = float(sys.argv[1])
for i in range(int(gb * 10)):
    with open(f'src/photo{i:03}.raw', 'wb') as f:
        f.write(random.randbytes(100_000_000))
PY
t() { local name=$1; shift; /usr/bin/time -f "$name: %e s wall, %M KB peak RSS, exit %x" "$@"; }
t "create without parity" $bd create -s src -o out0 -n ps -b "$DISC" -c none -y -q --no-binary
rm -rf out0
t "create --parity-discs 1" $bd -v create -s src -o out -n ps -b "$DISC" -c none -y --no-binary \
    --parity-discs 1 2>&1 | grep -E "parity|resources|create"
data=$(ls out/images/*-disc*.iso)
start=$(date +%s.%N); cat $data > /dev/null; end=$(date +%s.%N)
echo "cat of the data images: $(echo "$end - $start" | bc) s ($(du -cb $data | tail -1 | cut -f1) bytes)"
mkdir set fixed
for f in out/images/*.iso; do ln "$f" set/; done
rm set/ps-gen0001-disc0002.iso
orig=$(sha256sum out/images/ps-gen0001-disc0002.iso | cut -d' ' -f1)
t "rebuild of disc 2 (verify --repair)" $bd -v verify --repair -o fixed set 2>&1 | grep -E "rebuilt|resources|rebuild|verify"
[ "$(sha256sum fixed/ps-gen0001-disc0002.iso | cut -d' ' -f1)" = "$orig" ] && echo "rebuilt disc 2: identical to the original (sha256)"
ls -l out/images
