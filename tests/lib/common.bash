# What the integration tests (tests/bats) and the tests under a real systemd (tests/systemd) share: waiting for an
# event with a deadline, and the python3 they run. Loaded by both helpers.bash files.

bats_load_library bats-support
bats_load_library bats-assert
# run --separate-stderr and run's exit-status flags: bats 1.5 and later (Debian 12 has 1.8, 13 has 1.11).
bats_require_minimum_version 1.5.0

# Deadlines with room for a loaded 2-core machine (CI, stress-ng beside the suite, builds and debootstraps at the
# same time): a wait ends as soon as its event comes, so only a failing test pays for it.
: "${WAIT_SECONDS:=30}"

# The python3 the helpers run: the system one when there is one (a pyenv shim costs half a second per start).
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

# Polls "$@" until it succeeds or the deadline passes (returns 1 then, naming what it waited for).
wait_for() {
  local deadline=$((SECONDS + WAIT_SECONDS)) i=0
  until "$@" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${WAIT_SECONDS}s waiting for: $*" >&2
      return 1
    fi
    # 10 ms steps for the first second, then 50 ms: quick when things are quick, cheap when they are not.
    if ((i++ < 100)); then sleep 0.01; else sleep 0.05; fi
  done
}

# What a client loop (tests/programs/client-loop.py, started by each helpers.bash's client_loop_start NAME PORT) wrote
# to NAME.log: the number of lines starting with WORD ("ok", "fail"): client_loop_count NAME WORD; whether generation
# N answered it: client_loop_saw NAME N.
client_loop_count() { grep -c "^$2" "$BATS_TEST_TMPDIR/$1.log" || true; }
client_loop_saw() { grep -qx "ok $2" "$BATS_TEST_TMPDIR/$1.log"; }
