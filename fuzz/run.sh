#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) and prints execs/s, total execs and crashes.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Long campaigns: `cargo +nightly fuzz run <target> -- -max_total_time=3600 -jobs=2`.
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz smoke SKIPPED: no nightly toolchain"
  exit 0
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
  echo "fuzz smoke SKIPPED: cargo-fuzz not installed (cargo install cargo-fuzz)"
  exit 0
fi
targets=$(cargo +nightly fuzz list)
# Seed corpora from a real image of the sample tree (made with whatever bd-archive build exists).
bin=""
for b in ../target/release/bd-archive ../target/debug/bd-archive; do [ -x "$b" ] && bin=$b && break; done
if [ -n "$bin" ] && { [ ! -s seeds/disc/sample.iso ] || [ ! -s seeds/parity_manifest/mirror.bin ]; }; then
  tmp=$(mktemp -d)
  "$bin" create -s ../examples/sample-tree -o "$tmp/out" -n sample -b 32M -y -q >/dev/null 2>&1 || true
  img="$tmp/out/images/sample-gen0001-disc0001.iso"
  if [ -f "$img" ]; then
    mkdir -p seeds/disc seeds/filesystem seeds/disc_header seeds/records seeds/chunk seeds/fec_header
    cp "$img" seeds/disc/sample.iso
    head -c $((1024 * 2048)) "$img" > seeds/filesystem/metadata.bin
    head -c 2048 "$img" > seeds/disc_header/header.bin
    cp "$tmp/out/sample-gen1.catalog" seeds/records/catalog.bin
    python3 - "$img" <<'PY' || true
import struct, sys
img = open(sys.argv[1], 'rb').read()
n = len(img) // 2048
d = struct.unpack_from('<Q', img, 48)[0]
i = img.find(b'\x5b\x2a\x4d\x18', 1024 * 2048)
open('seeds/chunk/first.bin', 'wb').write(img[i:i + 80 + 4096])
open('seeds/fec_header/first.bin', 'wb').write(img[d * 2048:(d + 1) * 2048])
PY
  fi
  # A parity disc (a mirror of the sample tree's one data disc): header, size, manifest.
  if "$bin" create -s ../examples/sample-tree -o "$tmp/par" -n sample -b 32M --parity-discs 1 -y -q >/dev/null 2>&1; then
    mkdir -p seeds/parity_manifest
    python3 - "$tmp/par/images/sample-gen0001-parity0001.iso" <<'PY' || true
import struct, sys
img = open(sys.argv[1], 'rb').read()
head = img[:2048]
lba, size = struct.unpack_from('<QQ', head, 160 + 24)
seed = head + struct.pack('<Q', len(img) // 2048) + img[lba * 2048:lba * 2048 + size]
open('seeds/parity_manifest/mirror.bin', 'wb').write(seed)
PY
  fi
  rm -rf "$tmp"
fi
fail=0
printf '%-14s %12s %14s %s\n' target execs/s total result
for t in $targets; do
  mkdir -p "corpus/$t" "seeds/$t"
  log=$(mktemp)
  maxlen=4096
  rss=2048
  timeout=20
  case "$t" in
    disc) maxlen=$((4 << 20));;
    parity_manifest) maxlen=65536;;
    filesystem) maxlen=$((2 << 20));;
    # Hostile-disc bound (issue 16): any crafted catalog within 1 GiB and 10 s per input.
    catalog_structure) rss=1024; timeout=10;;
  esac
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -rss_limit_mb=$rss -timeout=$timeout -max_len=$maxlen >"$log" 2>&1
  rc=$?
  total=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
  rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  if [ $rc -eq 0 ]; then res=ok; else res="CRASH (see fuzz/artifacts/$t)"; fail=1; grep -E "panicked|ERROR|SUMMARY|^error" "$log" | head -5; fi
  printf '%-14s %12s %14s %s\n' "$t" "${rate:-?}" "${total:-?}" "$res"
  rm -f "$log"
done
exit $fail
