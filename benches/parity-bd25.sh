#!/usr/bin/env bash
# Parity disc at BD-25 scale, by hand (not in CI; needs ~55 GB of disk in BD25_DIR, default
# /tmp/parity-bd25). Source as benches/bd25-scale.sh (2 GB of random files + a 20 GiB mostly-sparse
# file), archived with -c none to BD-25 images with --parity-discs 1: a full 25 GB data disc 1, a
# small data disc 2 and a 25 GB parity disc. Prints:
#   - create's wall time and peak RSS, and the parity step's own time (create -v);
#   - one `cat` of the data images (like the parity pass, mostly from disk: 25 GB > page cache);
#   - the rebuild of the missing 25 GB data disc 1 (`verify --repair -o DIR` of the set without
#     it; the original is deleted first to make room, its sha256 kept): wall time, peak RSS, and
#     that the rebuilt image equals the original.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bd="$PWD/target/release/bd-archive"
W="${BD25_DIR:-/tmp/parity-bd25}"; mkdir -p "$W"
cd "$W" && rm -rf src out set fixed
mkdir -p src
python3 - <<'PY'
import random
random.seed(25)
for i in range(20):
    with open(f'src/photo{i:02}.raw', 'wb') as f:
        f.write(random.randbytes(100_000_000))
with open('src/big.img', 'wb') as f:
    f.truncate(20 << 30)
    for g in range(20):
        f.seek(g << 30); f.write(random.randbytes(1_000_000))
PY
t() { local name=$1; shift; /usr/bin/time -f "$name: %e s wall, %M KB peak RSS, exit %x" "$@"; }
t "create --parity-discs 1" $bd -v create -s src -o out -n pb -b bd25 -c none -y --no-binary \
    --parity-discs 1 2>&1 | grep -E "parity|resources|create"
ls -l out/images
data=$(ls out/images/*-disc*.iso)
sync; start=$(date +%s.%N); cat $data > /dev/null; end=$(date +%s.%N)
echo "cat of the data images: $(echo "$end - $start" | bc) s ($(du -cb $data | tail -1 | cut -f1) bytes)"
d1=out/images/pb-gen0001-disc0001.iso
orig=$(sha256sum $d1 | cut -d' ' -f1)
echo "disc 1: $(stat -c %s $d1) bytes, sha256 $orig"
rm -f $d1
mkdir set fixed
for f in out/images/*.iso; do ln "$f" set/; done
t "rebuild of disc 1 (verify --repair)" $bd -v verify --repair -o fixed set 2>&1 | grep -E "rebuilt|resources|rebuild|verify|disc"
[ "$(sha256sum fixed/pb-gen0001-disc0001.iso | cut -d' ' -f1)" = "$orig" ] && echo "rebuilt disc 1: identical to the original (sha256)"
