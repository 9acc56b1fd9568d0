#!/usr/bin/env bash
# Compares bd-archive with its references on one generated mixed data set, in ONE run, and prints
# wall time, MB/s, peak RSS and ratios (machines here are noisy: only same-run ratios mean much).
# The extractions take turns into the same emptied directory, twice; each keeps its better time.
#   benches/compare.sh [SIZE_MB]     default 1024; BENCH_DIR=/path for the scratch space
# Needs: zstd, tar, /usr/bin/time; for the seed pipeline dar, par2 and genisoimage (skipped if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-1024}"
dir="${BENCH_DIR:-$(mktemp -d /tmp/bd-bench.XXXXXX)}"
mkdir -p "$dir"
cargo build --release --quiet
bd="$PWD/target/release/bd-archive"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), data ${size_mb} MB in $dir"
python3 - "$dir/src" "$size_mb" <<'PY'
import os, random, sys
root, size = sys.argv[1], int(sys.argv[2]) * 1_000_000
random.seed(42)
os.makedirs(root, exist_ok=True)
words = [''.join(random.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(random.randint(2, 9))) for _ in range(5000)]
# ≈40 % compressible text / logs
text, i = 0, 0
while text < size * 0.4:
    with open(f'{root}/log{i:03}.txt', 'w') as f:
        n = 0
        while n < 8_000_000:
            line = ' '.join(random.choice(words) for _ in range(12)) + f' id={random.randint(0, 10**6)}\n'
            f.write(line); n += len(line)
    text += n; i += 1
# ≈50 % incompressible photo-like files of 5–50 MB
photo, i = 0, 0
while photo < size * 0.5:
    n = min(random.randint(5, 50) * 1_000_000, int(size * 0.5 - photo) + 1_000_000)
    with open(f'{root}/IMG_{i:04}.raw', 'wb') as f:
        f.write(random.randbytes(n))
    photo += n; i += 1
# ≈10 % as tens of thousands of 1–8 KiB files in deep trees
small, i = 0, 0
while small < size * 0.1:
    d = f'{root}/tree/{i % 37}/{(i // 37) % 23}/{(i // 851) % 5}'
    os.makedirs(d, exist_ok=True)
    n = random.randint(1024, 8192)
    data = random.randbytes(n) if i % 2 else (random.choice(words) * 2000)[:n].encode()
    with open(f'{d}/f{i}.dat', 'wb') as f:
        f.write(data)
    small += n; i += 1
PY
bytes=$(du -sb "$dir/src" | cut -f1)
files=$(find "$dir/src" -type f | wc -l)
echo "data set: $bytes bytes in $files files"
cat "$dir"/src/*.txt "$dir"/src/*.raw >/dev/null   # warm the page cache for everyone alike

declare -A T R
run() { # name, command...
  local name=$1; shift
  sync
  /usr/bin/time -f "%e %M" -o "$dir/time.$name" "$@" >/dev/null 2>"$dir/err.$name" || { echo "$name failed:"; tail -5 "$dir/err.$name"; }
  read -r T[$name] R[$name] < "$dir/time.$name"
}

run tar_zstd sh -c "tar -cf - -C '$dir' src | zstd -T0 -3 -q > '$dir/ref.tar.zst'"
rm -rf "$dir/out"
run bd_create "$bd" create -s "$dir/src" -o "$dir/out" -n bench -b bd25 -y -q --no-binary
img=$(ls "$dir"/out/images/*.iso | head -1)
run cat sh -c "cat $dir/out/images/*.iso > /dev/null"
run sha256sum sh -c "sha256sum $dir/out/images/*.iso > /dev/null"
run bd_verify "$bd" verify -q "$dir/out/images"
zstd -dcq "$dir/ref.tar.zst" > "$dir/ref.tar"
# Extraction speed depends on the target filesystem's state (free-inode scans, writeback) more
# than on the tool, so the three extract into the same state in turn, twice, best time kept.
best() { # name: keep the smaller of T[name] and T[name.2]
  if awk -v a="${T[$1.2]}" -v b="${T[$1]}" 'BEGIN { exit !(a < b) }'; then T[$1]=${T[$1.2]}; R[$1]=${R[$1.2]}; fi
}
for round in 1 2; do
  sfx=""; [ "$round" = 1 ] || sfx=".2"
  rm -rf "$dir/x1"; mkdir -p "$dir/x1"
  run "tar_x$sfx" tar -xf "$dir/ref.tar" -C "$dir/x1"
  rm -rf "$dir/x1"; mkdir -p "$dir/x1"
  run "zstd_tar_x$sfx" sh -c "zstd -dcq '$dir/ref.tar.zst' | tar -xf - -C '$dir/x1'"
  rm -rf "$dir/x1" "$dir/x3"
  run "bd_extract$sfx" "$bd" extract -q -o "$dir/x3" "$dir/out/images"
done
for k in tar_x zstd_tar_x bd_extract; do best "$k"; done
rm -rf "$dir/x1"

seed=""
if command -v dar >/dev/null && [ -x /usr/bin/par2 ] && command -v genisoimage >/dev/null; then
  echo "seed tools: $(dar -V </dev/null 2>&1 | grep -m1 -i "dar version" | xargs) / $(/usr/bin/par2 --version 2>&1 | head -1) / $(genisoimage --version 2>&1 | head -1)"
  rm -rf "$dir/seed"; mkdir -p "$dir/seed"
  slice=$(( 25025314816 * 100 / 105 / 1048576 * 1048576 ))
  run seed_dar dar -c "$dir/seed/bench-gen1" -R "$dir/src" -s "$slice" --hash sha512 --min-digits 4 -Q -zzstd -am
  run seed_par2 sh -c "for s in $dir/seed/bench-gen1.*.dar; do /usr/bin/par2 create -q -r5 -n1 \$s.par2 \$s; done"
  run seed_iso genisoimage -quiet -iso-level 3 -udf -V bench_G01_0001 -o "$dir/seed/disc.iso" "$dir/seed"
  seed=1
  rm -rf "$dir/p2"; mkdir -p "$dir/p2"; cp "$dir/seed"/bench-gen1.0001.dar "$dir/p2/"
  run par2_r10 /usr/bin/par2 create -q -r10 -n1 "$dir/p2/x.par2" "$dir/p2/bench-gen1.0001.dar"
fi

mbs() { awk -v b="$bytes" -v t="$1" 'BEGIN { if (t > 0) printf "%.0f", b / t / 1e6; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print "-" }'; }
fps() { awk -v n="$files" -v t="$1" 'BEGIN { if (t > 0) printf "%.0f", n / t; else print "-" }'; }
printf '\n%-34s %9s %9s %9s %10s\n' "step" "wall s" "MB/s" "files/s" "RSS MB"
for k in tar_zstd bd_create seed_dar seed_par2 seed_iso par2_r10 cat sha256sum bd_verify tar_x zstd_tar_x bd_extract; do
  [ -n "${T[$k]:-}" ] || continue
  printf '%-34s %9s %9s %9s %10s\n' "$k" "${T[$k]}" "$(mbs "${T[$k]}")" "$(fps "${T[$k]}")" "$(( ${R[$k]} / 1024 ))"
done
echo
echo "create vs tar|zstd -T0 -3 (throughput ratio):  $(ratio "${T[bd_create]}" "${T[tar_zstd]}")  (target >= 0.8)"
if [ -n "$seed" ]; then
  seed_total=$(awk -v a="${T[seed_dar]}" -v b="${T[seed_par2]}" -v c="${T[seed_iso]}" 'BEGIN{print a+b+c}')
  echo "create vs seed dar+par2+genisoimage:          $(ratio "${T[bd_create]}" "$seed_total")  (target >= 8)"
  echo "create (all of it) vs par2 create -r10 alone: $(ratio "${T[bd_create]}" "${T[par2_r10]}")  (the >= 10 target is for the FEC stage alone: benches/fec_compare.sh)"
fi
echo "verify vs cat:                                 $(ratio "${T[bd_verify]}" "${T[cat]}")  (target >= 0.5)"
echo "verify vs sha256sum:                           $(ratio "${T[bd_verify]}" "${T[sha256sum]}")  (target >= 5)"
echo "extract vs tar -x:                             $(ratio "${T[bd_extract]}" "${T[tar_x]}")  (target >= 0.7)"
echo "extract vs zstd -dc | tar -x:                  $(ratio "${T[bd_extract]}" "${T[zstd_tar_x]}")"
diff -rq "$dir/src" "$dir/x3/src" >/dev/null 2>&1 || diff -rq "$dir/src" "$dir/x3" >/dev/null && echo "restore: identical to the source"
[ -n "${BENCH_DIR:-}" ] || rm -rf "$dir"
