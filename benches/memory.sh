#!/usr/bin/env bash
# Peak memory of create and extract against the number of entries (issue: "catalog ≤ 200 bytes per
# entry plus path length in RAM"). For each N it generates a tree of N tiny files (0–16 bytes, paths
# like d000/d042/f0004242.txt), archives it to bd25 images, extracts them, and prints peak RSS.
# The figure that matters is the slope between the smallest and each larger N, less the average
# path length: bytes per entry = (RSS_N − RSS_smallest) / (entries_N − entries_smallest) − avg path.
#   benches/memory.sh [FILES...]     default 10000 1000000
#   MEM_DIR=/tmp/mem-bench (scratch), MEM_KEEP=1 keeps the generated trees for the next run.
# Needs /usr/bin/time and python3. The restore is checked (count + diff -rq) on the smallest tree.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 10000 1000000
dir="${MEM_DIR:-/tmp/mem-bench}"
mkdir -p "$dir"
cargo build --release --quiet
bd="$PWD/target/release/bd-archive"

gen() { # N → $dir/src-N (reused if complete)
  local n=$1 src="$dir/src-$1"
  [ -e "$src.done" ] && return
  rm -rf "$src"
  python3 - "$src" "$n" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(n)
made = set()
for i in range(n):
    d = f'{root}/d{i // 10000:03d}/d{(i // 100) % 100:03d}'
    if d not in made:
        os.makedirs(d, exist_ok=True)
        made.add(d)
    with open(f'{d}/f{i:07d}.txt', 'wb') as f:
        f.write(random.randbytes(random.randint(0, 16)))
PY
  touch "$src.done"
}

peak() { # command... → prints peak RSS in KiB
  /usr/bin/time -f "%M" -o "$dir/time" "$@" >/dev/null 2>"$dir/err" || {
    echo "failed: $*" >&2
    tail -5 "$dir/err" >&2
    exit 1
  }
  cat "$dir/time"
}

printf '%10s %10s %9s %13s %14s %13s %14s\n' files entries avg_path create_KiB create_B/entry extract_KiB extract_B/entry
first=""
for n in "$@"; do
  gen "$n"
  src="$dir/src-$n"
  # Entries and average path length as the catalog stores them (relative, '/'-separated).
  read -r entries avg < <(cd "$src" && find . -mindepth 1 -printf '%P\n' |
    awk '{ n++; s += length($0) } END { printf "%d %.1f\n", n, s / n }')
  out="$dir/out-$n" x="$dir/x-$n"
  rm -rf "$out" "$x"
  c=$(peak "$bd" create -s "$src" -o "$out" -n m -b bd25 -y -q --no-binary)
  e=$(peak "$bd" extract -q -o "$x" "$out/images")
  if [ -z "$first" ]; then
    first="$entries $c $e"
    # The restore is complete and byte-identical (checked on the smallest tree only: diff is slow).
    got=$(find "$x" -type f | wc -l)
    [ "$got" -eq "$n" ] || { echo "extract restored $got of $n files" >&2; exit 1; }
    diff -rq "$src" "$x" >&2 || { echo "restore differs from the source" >&2; exit 1; }
    printf '%10d %10d %9.1f %13d %14s %13d %14s\n' "$n" "$entries" "$avg" "$c" - "$e" -
  else
    read -r e0 c0 x0 <<<"$first"
    per() { awk -v a="$1" -v b="$2" -v n="$entries" -v n0="$e0" -v p="$avg" \
      'BEGIN { printf "%.0f", (a - b) * 1024 / (n - n0) - p }'; }
    printf '%10d %10d %9.1f %13d %14s %13d %14s\n' "$n" "$entries" "$avg" "$c" "$(per "$c" "$c0")" "$e" "$(per "$e" "$x0")"
  fi
  rm -rf "$out" "$x"
done
[ -n "${MEM_KEEP:-}" ] || rm -rf "$dir"
