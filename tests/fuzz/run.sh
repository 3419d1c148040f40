#!/bin/sh
# Fuzzes each parser for a while (tests/fuzz/README.md):
#   SECONDS=60 sh tests/fuzz/run.sh              every target, 60 s each (the default)
#   TARGETS="config notify" sh tests/fuzz/run.sh some of them
# Builds build-fuzz/ (clang, ASan+UBSan, libFuzzer) if it is missing. Each target fuzzes a scratch copy of its seed
# corpus in /tmp, so the repository's corpus is not flooded with generated inputs. Prints executions, exec/s and the
# coverage reached per target; exits 1 if any target crashed, with the crash file's path in the output.
set -eu
cd "$(dirname "$0")/../.."
# Read once: in bash, SECONDS counts up by itself.
# shellcheck disable=SC3028 # an ordinary variable here, set by the caller
secs=${SECONDS:-60}
targets=${TARGETS:-config address notify control}
root=$PWD
build=${BUILD_FUZZ:-build-fuzz}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$build" >/dev/null

# UBSan only prints by default: make every report a crash. Leaks are checked by libFuzzer itself (-detect_leaks).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"

status=0
for t in $targets; do
  exe="$build/tests/fuzz/fuzz-$t"
  scratch=$(mktemp -d "/tmp/fuzz-$t.XXXXXX")
  cp -r "tests/fuzz/corpus/$t" "$scratch/corpus"
  # -jobs=1 runs the fuzzer in a child process that logs to fuzz-0.log (in the current directory), and makes the
  # parent's exit status non-zero when the child found something.
  r=0
  (cd "$scratch" && "$exe" -jobs=1 -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
    -dict="$root/tests/fuzz/$t.dict" -artifact_prefix="$scratch/" corpus >parent.log 2>&1) || r=$?
  log="$scratch/fuzz-0.log"
  [ -f "$log" ] || log="$scratch/parent.log"
  # The last status line ("#123456 DONE cov: 1538 ft: 4383 corp: ...") and the final stats.
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(echo "$last" | sed -n 's/.* corp: \([^ ]*\).*/\1/p')
  crashes=$(find "$scratch" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  printf 'fuzz-%-8s %4ss  execs %-10s exec/s %-7s cov %-5s ft %-6s corpus %s\n' "$t" "$secs" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [ "$r" -ne 0 ] || [ -n "$crashes" ]; then
    status=1
    echo "fuzz-$t: FAILED (exit $r); the fuzzer's log: $log"
    grep -E 'ERROR: |runtime error: |fuzz-[a-z]+: |SUMMARY: ' "$log" | head -n 5 | sed 's/^/  /' || true
    for f in $crashes; do
      echo "  crash file: $f (replay: $exe $f)"
    done
  else
    rm -rf "$scratch"
  fi
done
exit "$status"
