#!/usr/bin/env bash
# Builds a fully static x86_64 Linux bd-archive (glibc, crt-static) and a stripped copy:
#   target/static/bd-archive   — one file that runs on any x86_64 Linux, and that `create` copies
#                                onto every disc (it carries only a static binary).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" cargo build --release --locked --target "$target"
mkdir -p target/static
cp "target/$target/release/bd-archive" target/static/bd-archive
strip target/static/bd-archive 2>/dev/null || echo "warning: strip not found; the binary keeps its debug info"
if ldd target/static/bd-archive 2>&1 | grep -q "=>"; then
  echo "error: target/static/bd-archive is dynamically linked" >&2
  exit 1
fi
file target/static/bd-archive 2>/dev/null || true
ls -l target/static/bd-archive
