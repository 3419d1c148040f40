#!/bin/sh
# Runs the whole test suite (unit and integration) from a fresh Debian 12 machine, as root:
#   sh tests/run.sh            the normal build, in build/
#   sh tests/run.sh --sanitize the same suite on an ASan+UBSan build, in build-sanitize/
set -eu
cd "$(dirname "$0")/.."
sh contrib/deps.sh --test
dir=build
opts=""
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-sanitize
  opts="-Db_sanitize=address,undefined -Db_lundef=false"
  # Any sanitizer report fails the test that triggered it.
  export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:${ASAN_OPTIONS:-}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
fi
# shellcheck disable=SC2086
[ -d "$dir" ] || meson setup "$dir" $opts >/dev/null
ninja -C "$dir"
status=0
meson test -C "$dir" --print-errorlogs --num-processes 2 || status=$?
# One closing line with the count of test points (TAP "ok" / "not ok" lines of every test program and bats file).
python3 tests/tap-count.py "$dir/meson-logs/testlog.json"
exit "$status"
