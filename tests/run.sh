#!/bin/sh
# Runs the whole test suite (unit, integration, under a real systemd in nspawn, in podman containers) on a fresh
# Debian 13 or 12 machine, as root:
#   sh tests/run.sh              the normal build, in build/
#   sh tests/run.sh --sanitize   the same suite on an ASan+UBSan build, in build-sanitize/
#   sh tests/run.sh --busy       the normal suite with a CPU hog beside it (stress-ng, 4 workers): the timing of
#                                every test must hold on a loaded machine too
# A test layer that cannot run fails the run, naming what is missing; it never drops out quietly.
set -eu
cd "$(dirname "$0")/.."
sh contrib/deps.sh --test
dir=build
opts=""
busy=0
case "${1:-}" in
  --sanitize)
    dir=build-sanitize
    opts="-Db_sanitize=address,undefined -Db_lundef=false"
    # Any sanitizer report fails the test that triggered it. The quarantine of freed memory (which catches a use
    # after free) is held to 32 MB, not 256: tests that flood baton check that its memory comes back.
    export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:quarantine_size_mb=32:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
    ;;
  --busy) busy=1 ;;
  "") ;;
  *) echo "usage: sh tests/run.sh [--sanitize | --busy]" >&2; exit 2 ;;
esac
# Configured afresh every time: a build/ set up before bats was installed (contrib/demo.sh does that) would keep a
# test list without the integration tests. -Dintegration-tests=enabled makes a missing bats a configure error.
# shellcheck disable=SC2086
if [ -f "$dir/build.ninja" ]; then
  meson setup --reconfigure "$dir" -Dintegration-tests=enabled $opts >/dev/null
else
  meson setup "$dir" -Dintegration-tests=enabled $opts >/dev/null
fi
ninja -C "$dir"

# Every test file of the tree must be in meson's list: one that is not (a layer that was not configured, a file not
# wired into tests/meson.build) fails the run here.
listed=$(meson test -C "$dir" --list 2>/dev/null)
missing=""
for f in tests/unit/test-*.c tests/lint/*.sh tests/bats/*.bats tests/systemd/*.bats tests/podman/*.bats; do
  name=$(basename "$f")
  name=${name#test-}
  name=${name%.c}
  name=${name%.bats}
  name=${name%.sh}
  printf '%s\n' "$listed" | grep -q " / $name\$" || missing="$missing $f"
done
if [ -n "$missing" ]; then
  echo "tests/run.sh: these test files are not in $dir's test list:$missing" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

hog=""
if [ "$busy" = 1 ]; then
  stress-ng --cpu 4 --timeout 3600 --quiet &
  hog=$!
  trap 'kill "$hog" 2>/dev/null || true' EXIT
  echo "tests/run.sh: stress-ng --cpu 4 (pid $hog) runs beside the suite" >&2
fi
status=0
# The systemd tests boot the host's own root; on Debian 13 that is systemd 257 already. The same file on a Debian 13
# root from a Debian 12 host (meson test --suite systemd-257) is .ci/run's: it debootstraps that root once.
meson test -C "$dir" --print-errorlogs --num-processes 2 --no-suite systemd-257 || status=$?
[ -z "$hog" ] || kill "$hog" 2>/dev/null || true
# One closing line with the count of test points (TAP "ok" / "not ok" lines of every test program and bats file).
python3 tests/tap-count.py "$dir/meson-logs/testlog.json"
exit "$status"
