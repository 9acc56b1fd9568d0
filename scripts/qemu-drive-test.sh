#!/usr/bin/env bash
# The real SG_IO path against a real Linux kernel: boots the host's Debian kernel under QEMU (TCG)
# from a busybox initramfs that holds bd-archive, with a bd-archive disc image attached as an
# emulated CD-ROM (virtio-scsi `scsi-cd`, then ATAPI `ide-cd`), and runs inside the guest:
#   bd-archive drive                 sysfs detection, INQUIRY, GET EVENT STATUS, TEST UNIT READY,
#                                    GET CONFIGURATION, READ DISC INFORMATION, READ CAPACITY
#   bd-archive drive --read-to F     READ(12) of the whole disc through SG_IO, SHA-256 compared
#                                    with the image on the host; traced (-v): every READ as large
#                                    as the guest's queue limit (max_hw_sectors_kb) and none failed
#   bd-archive verify /dev/sr0       the SG_IO damaged-disc reader + FEC check
#   bd-archive verify -D --map F     ddrescue mapfile + rescue copy; extract -D: restore via the drive
#   bd-archive create -D /dev/sr0    capacity from the drive: must refuse the pressed CD-ROM
#   bd-archive drive (scsi: + an empty 2nd drive)  two drives and no terminal -> error naming -D;
#                                    the empty drive's TEST UNIT READY CHECK CONDITION (2/3A/00)
#   bd-archive drive with a reader / a mount  busy check via /proc, and O_EXCL semantics
#   bd-archive drive --eject / --load  START STOP UNIT, tray state seen by GET EVENT STATUS
#                                    (-v: every CDB and its outcome, as the guest's kernel saw it)
# Results come back over the serial console as "BDA <step> rc=<n>" lines and are checked here.
#
# Usage: scripts/qemu-drive-test.sh [BINARY] [scsi|ide|both]
#   BINARY defaults to target/debug/bd-archive; a dynamic binary is taken with the libraries
#   ldd names, target/static/bd-archive (scripts/build-static.sh) alone. Needs: qemu-system-x86_64, a kernel in /boot with its
#   modules in /lib/modules, busybox (static), cpio, gzip. Exit 0 = all checks passed,
#   77 = something needed is missing (the message says what), 1 = a check failed.
# KVM is not used: nested KVM on our CI hosts hangs or aborts; TCG boots in ~8 s.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
BUSES=${2:-both}
BIN=${BIN:-target/debug/bd-archive}
skip() { echo "SKIPPED: $*"; exit 77; }
[ -x "$BIN" ] || skip "no bd-archive binary at $BIN (cargo build first)"
"$BIN" drive --help >/dev/null 2>&1 || { echo "FAILED: $BIN has no drive command (stale build?)"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
command -v cpio >/dev/null || skip "cpio not installed"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || skip "busybox not installed (apt-get install busybox-static)"
# (ldd output is captured first: `ldd | grep -q` under pipefail fails at random when grep
# exits early and ldd gets SIGPIPE.)
dynamic() { local o; o=$(ldd "$1" 2>&1 || true); [[ "$o" == *"=>"* ]]; }
if dynamic "$BUSYBOX"; then skip "$BUSYBOX is dynamic; install busybox-static"; fi
K=$(ls /lib/modules 2>/dev/null | sort -V | tail -1)
[ -n "$K" ] && [ -r "/boot/vmlinuz-$K" ] || skip "no kernel in /boot with modules in /lib/modules (apt-get install linux-image-amd64)"
VMLINUZ=/boot/vmlinuz-$K

W=$(mktemp -d -t bda-qemu.XXXXXX)
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$W"' EXIT; else echo "keeping $W"; fi
T0=$(date +%s.%N)

# --- a disc image made by bd-archive -------------------------------------------------------
mkdir -p "$W/src/photos" "$W/src/docs"
for i in 1 2 3; do head -c 300000 /dev/urandom > "$W/src/photos/img$i.raw"; done
seq 1 20000 > "$W/src/docs/numbers.txt"
echo "hello from the guest test" > "$W/src/docs/hello.txt"
"$BIN" -q create -s "$W/src" -o "$W/out" -n qemutest -b 32M -y > "$W/create.log" 2>&1 \
  || { cat "$W/create.log"; echo "FAILED: bd-archive create"; exit 1; }
ISO="$W/out/images/qemutest-gen0001-disc0001.iso"
[ -f "$ISO" ] || { echo "FAILED: no image made"; exit 1; }
HOST_SHA=$(sha256sum "$ISO" | cut -d' ' -f1)
FILES_SHA=$(cat "$W/src/docs/hello.txt" "$W/src/docs/numbers.txt" | sha256sum | cut -d' ' -f1)
SECTORS=$(( $(stat -c %s "$ISO") / 2048 ))

# --- initramfs: busybox, the kernel's SCSI/CD modules, bd-archive --------------------------
R="$W/root"
mkdir -p "$R"/{bin,proc,sys,dev,tmp,lib/modules}
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$R/bin/busybox" --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
cp "$BIN" "$R/bin/bd-archive"
strip "$R/bin/bd-archive" 2>/dev/null || true
if dynamic "$BIN"; then
  libs=$(ldd "$BIN")
  for l in $(grep -o '/[^ ]*' <<< "$libs"); do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
fi
: > "$R/lib/modules/order"
for m in virtio_pci virtio_scsi sr_mod sg ata_piix isofs; do modprobe -S "$K" --show-depends "$m" 2>/dev/null || true; done \
  | awk '$1=="insmod"{print $2}' | awk '!s[$0]++' | while read -r f; do
      case "$f" in
        *.ko) cp "$f" "$R/lib/modules/";;
        *.ko.xz) xz -dc "$f" > "$R/lib/modules/$(basename "$f" .xz)"; f=${f%.xz};;
        *.ko.zst) zstd -qdc "$f" > "$R/lib/modules/$(basename "$f" .zst)"; f=${f%.zst};;
      esac
      basename "$f" >> "$R/lib/modules/order"
    done
[ -s "$R/lib/modules/order" ] || skip "modprobe found no sr_mod/virtio_scsi modules for kernel $K"
cat > "$R/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m 2>/dev/null; done
i=0; while [ ! -e /dev/sr0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
step() { name=$1; shift; echo "--- $name: $*"; "$@"; echo "BDA $name rc=$?"; }
echo "BDA start uptime=$(cut -d' ' -f1 /proc/uptime)"
if grep -q bda.second /proc/cmdline; then
  # A second, empty drive (/dev/sr1): detection must refuse to guess without a terminal, and
  # the empty drive answers TEST UNIT READY with a real CHECK CONDITION (2/3A/00).
  step several sh -c 'bd-archive drive < /dev/null'
  step empty bd-archive -v drive -D /dev/sr1
else
  step detect bd-archive drive
fi
step json bd-archive drive -D /dev/sr0 --json
q=/sys/block/sr0/queue
echo "BDA limits hw=$(cat $q/max_hw_sectors_kb) soft=$(cat $q/max_sectors_kb) segs=$(cat $q/max_segments) segsize=$(cat $q/max_segment_size)"
step readto bd-archive -q drive -D /dev/sr0 --read-to /tmp/disc.iso
echo "BDA guest-sha $(sha256sum /tmp/disc.iso | cut -d' ' -f1)"
rm -f /tmp/disc.iso
# The same copy traced: every READ(12) as large as the kernel's queue limit allows, none refused.
step readtrace sh -c 'bd-archive -v drive -D /dev/sr0 --read-to /tmp/disc.iso 2>/tmp/trace.txt'
rm -f /tmp/disc.iso
echo "BDA reads n=$(grep -c 'READ(12)' /tmp/trace.txt) failed=$(grep 'READ(12)' /tmp/trace.txt | grep -vc GOOD) max=$(sed -n 's/.*READ(12).*GOOD, \([0-9]*\) bytes.*/\1/p' /tmp/trace.txt | sort -n | tail -1)"
step verify bd-archive -q verify /dev/sr0
mkdir -p /tmp/s; echo x > /tmp/s/x
step createD bd-archive create -s /tmp/s -o /tmp/o -n t -D /dev/sr0 -y
sleep 60 < /dev/sr0 & holder=$!
sleep 0.5
step holder bd-archive drive -D /dev/sr0
kill $holder; wait $holder 2>/dev/null
mkdir -p /mnt/disc
if mount -t iso9660 -o ro /dev/sr0 /mnt/disc; then
  step mounted bd-archive drive -D /dev/sr0
  umount /mnt/disc
fi
step verifymap bd-archive -q verify -D /dev/sr0 --map /tmp/disc.map
echo "BDA map-finished-blocks $(grep -c '^0x.* +$' /tmp/disc.map) map-other-blocks $(grep -c '^0x.* [-/*?]$' /tmp/disc.map)"
step extract bd-archive -q extract -D /dev/sr0 -o /tmp/r
echo "BDA restored-sha $(cat /tmp/r/docs/hello.txt /tmp/r/docs/numbers.txt | sha256sum | cut -d' ' -f1)"
step eject bd-archive drive -D /dev/sr0 --eject
step ejected bd-archive drive -D /dev/sr0
step load bd-archive -v drive -D /dev/sr0 --load
echo "BDA end uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initrd.img"
echo "image: $SECTORS sectors, sha256 $HOST_SHA; initramfs $(( $(stat -c %s "$W/initrd.img") / 1024 )) KiB; kernel $K"

# --- boot and check ---------------------------------------------------------------------------
fail=0
check() { # check LOG WHAT PATTERN
  if grep -qE "$3" "$1"; then echo "  ok   $2"; else echo "  FAIL $2 (expected /$3/)"; fail=1; fi
}
run_bus() {
  local bus=$1 log="$W/serial-$1.log" dev
  if [ "$bus" = ide ]; then
    dev=(-drive "file=$ISO,if=none,id=cd,media=cdrom,format=raw,readonly=on" -device ide-cd,drive=cd)
  else
    dev=(-device virtio-scsi-pci -drive "file=$ISO,if=none,id=cd,media=cdrom,format=raw,readonly=on" -device scsi-cd,drive=cd,scsi-id=0
         -drive if=none,id=empty,media=cdrom -device scsi-cd,drive=empty,scsi-id=1)
  fi
  local append='console=ttyS0 quiet panic=-1'
  [ "$bus" = ide ] || append="$append bda.second"
  local t0 t1
  t0=$(date +%s.%N)
  timeout 300 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
    -kernel "$VMLINUZ" -initrd "$W/initrd.img" -append "$append" \
    "${dev[@]}" </dev/null > "$log" 2>&1 || true
  t1=$(date +%s.%N)
  # Plain text: no carriage returns, no terminal escapes (SeaBIOS clears the screen).
  tr -d '\r' < "$log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g; s/^.*\(BDA start\)/\1/' > "$log.txt"
  echo "== $bus: guest output =="
  sed -n '/^BDA start/,/^BDA end/p' "$log.txt" | sed 's/^/  | /'
  echo "== $bus: checks (boot to power-off $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s) =="
  if [ "$bus" = ide ]; then
    check "$log.txt" "sysfs detection finds the one drive and identifies it (INQUIRY)" 'drive: +/dev/sr0 \(QEMU QEMU (CD|DVD)-ROM\)'
    check "$log.txt" "drive (detected) succeeds" 'BDA detect rc=0'
  else
    check "$log.txt" "two drives, no terminal: error naming both and -D" 'several optical drives found \(/dev/sr0 \(QEMU QEMU CD-ROM\), /dev/sr1 .*pass -D /dev/srN'
    check "$log.txt" "  ...exit 3" 'BDA several rc=3'
    check "$log.txt" "empty drive: real CHECK CONDITION decoded (2/3A/00)" 'scsi: TEST UNIT READY \[00 00 00 00 00 00\] -> CHECK CONDITION: NOT READY: medium not present \(2/3A/00\)'
    check "$log.txt" "  ...reported as no medium" 'BDA empty rc=0'
  fi
  check "$log.txt" "GET CONFIGURATION: current profile" 'medium: +CD-ROM \(profile 0x0008\)'
  check "$log.txt" "READ DISC INFORMATION: complete disc" 'disc: +complete, 1 session'
  check "$log.txt" "READ CAPACITY: $SECTORS sectors" "readable: +$SECTORS sectors of 2048 bytes"
  check "$log.txt" "--json report" "\"readable_sectors\": $SECTORS"
  check "$log.txt" "READ(12) of the whole disc" "read $SECTORS sectors"
  check "$log.txt" "whole-disc SHA-256 equals the image's" "BDA guest-sha $HOST_SHA"
  # The kernel's queue limit (sg_io() refuses a longer transfer with EIO): our READs use all of
  # it, up to our 1 MiB cap, in 32 KiB multiples, and never more.
  # (segments − 1) pages, because an unaligned buffer's pages need not be adjacent.
  local hw soft segs limit maxread
  hw=$(sed -n 's/^BDA limits hw=\([0-9]*\) .*/\1/p' "$log.txt" | head -1)
  soft=$(sed -n 's/^BDA limits hw=[0-9]* soft=\([0-9]*\) .*/\1/p' "$log.txt" | head -1)
  segs=$(sed -n 's/^BDA limits .* segs=\([0-9]*\) .*/\1/p' "$log.txt" | head -1)
  echo "  info $bus: $(grep -m1 '^BDA limits' "$log.txt" | sed 's/^BDA limits //')"
  if [ -n "$hw" ] && [ -n "$soft" ] && [ -n "$segs" ]; then
    limit=$(( (hw < soft ? hw : soft) )); [ "$limit" -gt 1024 ] && limit=1024
    [ $(( (segs - 1) * 4 )) -lt "$limit" ] && limit=$(( (segs - 1) * 4 ))
    check "$log.txt" "drive reports the kernel's transfer limit ($limit KiB)" "transfer: +$limit KiB per command"
    limit=$(( limit / 32 * 32 ))
    maxread=$(( limit * 1024 )); [ $(( SECTORS * 2048 )) -lt "$maxread" ] && maxread=$(( SECTORS * 2048 ))
    check "$log.txt" "READ(12)s of $maxread bytes (the limit), none refused" "BDA reads n=[0-9]+ failed=0 max=$maxread\$"
  else
    echo "  FAIL no queue limits from the guest"; fail=1
  fi
  check "$log.txt" "verify /dev/sr0 (SG_IO damaged-disc reader + FEC check): intact" 'BDA verify rc=0'
  check "$log.txt" "verify -D --map: intact, ddrescue mapfile all finished" 'BDA verifymap rc=0'
  check "$log.txt" "  ...mapfile: one finished block, nothing else" 'BDA map-finished-blocks 1 map-other-blocks 0'
  check "$log.txt" "extract -D /dev/sr0: bit-exact restore through the drive" 'BDA extract rc=0'
  check "$log.txt" "  ...restored files equal the source" "BDA restored-sha $FILES_SHA"
  check "$log.txt" "create -D refuses a pressed CD-ROM, naming it" 'not a blank BD-R'
  check "$log.txt" "create -D exits 3" 'BDA createD rc=3'
  check "$log.txt" "busy check: holder found in /proc/*/fd" 'in use: +the drive is open in pid [0-9]+ \(sleep\)'
  check "$log.txt" "  ...and a plain reader does not block O_EXCL (why /proc is scanned)" 'in use: +the drive is open in pid [0-9]+ \(sleep\); close that program first$'
  check "$log.txt" "busy check: mount found in /proc/self/mountinfo" 'in use: +the disc is mounted on /mnt/disc'
  check "$log.txt" "  ...and the kernel refuses O_EXCL while mounted (EBUSY)" 'in use: +the disc is mounted on /mnt/disc.*also refuses an exclusive open'
  check "$log.txt" "free drive: exclusive open granted" '"exclusive_open": true'
  check "$log.txt" "START STOP UNIT eject" 'BDA eject rc=0'
  check "$log.txt" "tray open seen (GET EVENT STATUS)" 'medium: +none \(tray open'
  check "$log.txt" "START STOP UNIT load, disc back" 'BDA load rc=0'
  check "$log.txt" "-v traces each CDB and its outcome" 'scsi: START STOP UNIT \[1B 00 00 00 03 00\] -> GOOD'
  if ! grep -q 'BDA end' "$log.txt"; then echo "  FAIL guest did not finish"; fail=1; fi
  if [ "$fail" != 0 ]; then echo "== $bus: serial log (last 80 lines, raw: cat -v) =="; tail -80 "$log" | cat -v; fi
}
case "$BUSES" in
  both) run_bus scsi; run_bus ide;;
  scsi|ide) run_bus "$BUSES";;
  *) echo "unknown bus $BUSES (scsi, ide or both)"; exit 2;;
esac
echo "total: $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
if [ "$fail" = 0 ]; then echo "PASSED: real-kernel SG_IO drive test ($BUSES)"; else echo "FAILED: real-kernel SG_IO drive test"; exit 1; fi
