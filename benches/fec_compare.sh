#!/usr/bin/env bash
# FEC figures in one run, on one generated data set (incompressible, so the disc image is about as
# large as the data):
#   1. peak RSS of `bd-archive create` (/usr/bin/time -v) with --memory 1G and with the default
#      budget, next to that budget;
#   2. our FEC encode (the code `create` runs, over a page-cached file, -r 10 plan, default budget)
#      against Debian's /usr/bin/par2 create -r10 on the same file, all cores for both.
#   benches/fec_compare.sh [SIZE_MB]    default 4000; BENCH_DIR=/path for the scratch space (/tmp)
# Generated data lives in a temporary directory that is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-4000}"
dir=$(mktemp -d "${BENCH_DIR:-/tmp}/bd-fec.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cargo build --release --quiet
bench_exe=$(cargo bench --bench fec --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | head -1)
bd="$PWD/target/release/bd-archive"
mem_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
echo "machine: $(nproc) cores, $((mem_kib / 1024)) MiB RAM, load $(cut -d' ' -f1-3 /proc/loadavg); data ${size_mb} MB in $dir"

mkdir -p "$dir/src"
head -c $((size_mb * 1000000)) /dev/urandom > "$dir/src/data.bin"

# 1. create: peak RSS against the budget.
default_mib=$(( mem_kib / 4 / 1024 )); [ "$default_mib" -gt 768 ] && default_mib=768
for mem in 1G default; do
  args=(); [ "$mem" = default ] || args=(--memory "$mem")
  rm -rf "$dir/out"
  /usr/bin/time -v "$bd" create -s "$dir/src" -o "$dir/out" -n fecbench -b bd25 -y -q --no-binary \
    "${args[@]}" 2> "$dir/time.txt" >/dev/null || { echo "create failed:"; tail -5 "$dir/time.txt"; exit 1; }
  rss=$(awk -F: '/Maximum resident/ {gsub(/ /, "", $2); print $2}' "$dir/time.txt")
  wall=$(awk '/Elapsed \(wall/ {print $NF}' "$dir/time.txt")
  img=$(ls "$dir"/out/images/*.iso | head -1)
  budget=$([ "$mem" = default ] && echo "${default_mib} MiB (default)" || echo "$mem")
  printf 'create --memory %-16s image %6d MiB  wall %8s  peak RSS %5d MiB\n' \
    "$budget" $(( $(stat -c %s "$img") / 1048576 )) "$wall" $(( rss / 1024 ))
done
rm -rf "$dir/out"

# 2. FEC encode vs par2 create -r10 on the same file (page-cached for both).
echo "par2: $(/usr/bin/par2 -V 2>&1 | head -1) (/usr/bin/par2)"
cat "$dir/src/data.bin" > /dev/null
/usr/bin/time -f "%e %M" -o "$dir/par2.time" /usr/bin/par2 create -q -q -r10 "$dir/p.par2" "$dir/src/data.bin" >/dev/null
read -r par2_s par2_rss < "$dir/par2.time"
echo "par2 create -r10: ${par2_s} s wall, peak RSS $(( par2_rss / 1024 )) MiB"
rm -f "$dir"/p*.par2
ours=$(BENCH_FEC_FILE="$dir/src/data.bin" "$bench_exe")
echo "$ours"
ours_s=$(sed -n 's/.*: \([0-9.]*\) s wall.*/\1/p' <<<"$ours")
awk -v a="$ours_s" -v b="$par2_s" 'BEGIN { printf "FEC encode vs par2 create -r10: %.1fx faster (target >= 10)\n", b / a }'
