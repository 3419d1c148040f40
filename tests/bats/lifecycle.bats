#!/usr/bin/env bats
# The lifecycle (baton(1) SIGNALS and EXIT STATUS; baton.yaml(5) STOP): SIGTERM/SIGINT stop gracefully (stop.signal,
# stop.timeout, then SIGKILL), baton exits with the contract's status, reaps every process as a child subreaper,
# forwards SIGUSR1/SIGUSR2/SIGWINCH, gives its child a parent-death signal, and keeps one pid for its whole life.

load 'helpers'

setup() { demo_setup; }
teardown() { teardown_processes; }

# The log lines matching each regex appear in this order: log_in_order REGEX...
log_in_order() {
  local re prev=0 n
  for re in "$@"; do
    n=$(grep -nE -- "$re" "$BATON_LOG" | head -n1 | cut -d: -f1)
    if [[ -z "$n" ]]; then
      echo "not in the log: $re" >&2
      return 1
    fi
    if ((n <= prev)); then
      echo "out of order (line $n, after line $prev): $re" >&2
      return 1
    fi
    prev=$n
  done
}

# No process with this pid exists any more, not even as a zombie.
pid_vanished() { ! pid_exists "$1"; }

# The parent pid of pid.
ppid_of() { ps -o ppid= -p "$1" | tr -d ' '; }
ppid_is() { [[ "$(ppid_of "$1")" == "$2" ]]; }

# Microseconds since the epoch.
now_us() { echo "${EPOCHREALTIME/./}"; }

# A python child that reports READY=1, then writes the name of each signal it gets to $BATS_TEST_TMPDIR/signals;
# SIGTERM and SIGINT also end it with status 0.
signal_child() {
  py_child signals <<PY
out = "$BATS_TEST_TMPDIR/signals"
def record(sig, _frame):
    with open(out, "a") as f:
        f.write(signal.Signals(sig).name + "\n")
    if sig in (signal.SIGTERM, signal.SIGINT):
        sys.exit(0)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
    signal.signal(s, record)
notify("READY=1")
while True:
    signal.pause()
PY
}
signals_are() { [[ "$(tr '\n' ' ' <"$BATS_TEST_TMPDIR/signals" 2>/dev/null)" == "$1" ]]; }

@test "SIGTERM: a graceful stop: the child gets stop.signal (SIGTERM), baton exits 0, in that order" {
  program_config "$PYTHON" "$(signal_child)"
  baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  pid=$(logged_pid 1)

  baton_stop
  assert_equal "$BATON_STATUS" 0
  signals_are "SIGTERM "
  log_in_order 'received SIGTERM from pid [0-9]+, stopping' \
    "stopping generation 1 \(pid $pid\) with SIGTERM" \
    "generation 1 \(pid $pid\) exited with status 0" \
    'exiting with status 0'
  pid_gone "$pid"
}

@test "SIGINT: the same graceful stop (the child still gets stop.signal), baton exits 0" {
  program_config "$PYTHON" "$(signal_child)"
  baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  pid=$(logged_pid 1)

  kill -INT "$BATON_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  signals_are "SIGTERM "
  log_in_order 'received SIGINT from pid [0-9]+, stopping' \
    "stopping generation 1 \(pid $pid\) with SIGTERM" \
    "generation 1 \(pid $pid\) exited with status 0" \
    'exiting with status 0'
}

@test "a child that ignores SIGTERM is SIGKILLed after stop.timeout (1s); baton still exits 0" {
  CFG_STOP="{timeout: 1s}" program_config "$PROBE"
  report="$BATS_TEST_TMPDIR/report"
  PROBE_OUT="$report" PROBE_IGNORE_TERM=1 baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  pid=$(report_get "$report" pid)

  t0=$(now_us)
  kill -TERM "$BATON_PID"
  # The probe ignores SIGTERM: after the stop signal it still runs.
  wait_log "stopping generation 1 \(pid $pid\) with SIGTERM"
  kill -0 "$pid"
  baton_wait_exit
  elapsed_ms=$((($(now_us) - t0) / 1000))
  assert_equal "$BATON_STATUS" 0
  log_in_order "stopping generation 1 \(pid $pid\) with SIGTERM" \
    "generation 1 \(pid $pid\) did not stop within stop.timeout, sending SIGKILL" \
    "generation 1 \(pid $pid\) was killed by SIGKILL" \
    'exiting with status 0'
  echo "# stopped after ${elapsed_ms} ms" >&3
  ((elapsed_ms >= 950 && elapsed_ms < 5000))
  pid_gone "$pid"
}

@test "restart.policy never: the child exits 3, baton exits 3" {
  CFG_EXTRA="restart: {policy: never}" demo_config --exit-after-ready 3
  baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 3
  log_has 'generation 1 is ready'
  log_has 'generation 1 \(pid [0-9]+\) exited with status 3; restart.policy is never, exiting'
}

@test "restart.policy never: the child killed by SIGKILL, baton exits 137" {
  CFG_EXTRA="restart: {policy: never}" demo_config
  baton_start run -c "$CFG"
  wait_http "$PORT"
  pid=$(logged_pid 1)

  kill -KILL "$pid"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 137
  log_has "generation 1 \(pid $pid\) was killed by SIGKILL; restart.policy is never, exiting"
}

@test "restart.policy never: the child raises SIGTERM on itself, baton exits 143" {
  CFG_EXTRA="restart: {policy: never}" program_config "$PROBE"
  PROBE_OUT="$BATS_TEST_TMPDIR/report" PROBE_SIGNAL=15 baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 143
  log_has 'generation 1 \(pid [0-9]+\) was killed by SIGTERM'
}

@test "the first generation exits 5 before it was ever ready: baton exits 5, no restart" {
  # restart.policy is on-failure (the default): a start that never succeeded is not retried.
  program_config "$PROBE"
  PROBE_OUT="$BATS_TEST_TMPDIR/report" PROBE_NOTIFY=none PROBE_EXIT=5 baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 5
  log_has 'generation 1 \(pid [0-9]+\) exited with status 5 before it was ready'
  run log_has 'generation 2 started'
  assert_failure
}

@test "an orphan of the child is reparented to baton (the subreaper) and reaped: no zombie" {
  program_config "$PROBE"
  report="$BATS_TEST_TMPDIR/report"
  PROBE_OUT="$report" PROBE_FORK_ORPHAN=1 baton_start run -c "$CFG" --log-level debug
  wait_for report_ready "$report"
  orphan=$(report_get "$report" orphan)
  [[ "$orphan" =~ ^[0-9]+$ ]]

  # It exited at once; baton, not init nor anyone else, reaped its zombie.
  wait_log "reaped process $orphan, which exited with status 0"
  wait_for pid_vanished "$orphan"
  kill -0 "$BATON_PID"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "a double-forked grandchild outliving its parent is reparented to baton and reaped when it exits" {
  cat >"$BATS_TEST_TMPDIR/child.sh" <<SH
( sleep 60 & echo \$! >"$BATS_TEST_TMPDIR/gc.tmp"; mv "$BATS_TEST_TMPDIR/gc.tmp" "$BATS_TEST_TMPDIR/gc" )
systemd-notify --ready
exec sleep 1000
SH
  program_config /bin/bash "$BATS_TEST_TMPDIR/child.sh"
  baton_start run -c "$CFG" --log-level debug
  wait_for test -s "$BATS_TEST_TMPDIR/gc"
  gc=$(cat "$BATS_TEST_TMPDIR/gc")
  track_pid "$gc"

  # Its parent (the subshell) exited: the grandchild now belongs to baton.
  wait_for ppid_is "$gc" "$BATON_PID"
  kill -TERM "$gc"
  wait_log "reaped process $gc, which was killed by SIGTERM"
  wait_for pid_vanished "$gc"
  kill -0 "$BATON_PID"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "SIGUSR1, SIGUSR2 and SIGWINCH are forwarded to the child" {
  program_config "$PYTHON" "$(signal_child)"
  baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'

  kill -USR1 "$BATON_PID"
  wait_for signals_are "SIGUSR1 "
  kill -USR2 "$BATON_PID"
  wait_for signals_are "SIGUSR1 SIGUSR2 "
  kill -WINCH "$BATON_PID"
  wait_for signals_are "SIGUSR1 SIGUSR2 SIGWINCH "
  # baton itself went on as before.
  kill -0 "$BATON_PID"
  run log_has 'stopping'
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "baton killed with SIGKILL: the child gets its parent-death signal, stop.signal, and exits" {
  # The demo ignores SIGTERM here: only stop.signal (SIGINT) ends it, so SIGTERM as the death signal would not do.
  CFG_STOP="{signal: SIGINT, timeout: 1s}" demo_config --ignore-sigterm
  baton_start run -c "$CFG"
  wait_http "$PORT"
  pid=$(logged_pid 1)
  track_pid "$pid"

  kill -KILL "$BATON_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 137
  wait_gone "$pid"
}

@test "SIGTERM while the child is still starting: baton stops it and exits 0" {
  CFG_READINESS="{timeout: 20s}" demo_config --ready-delay 10000
  baton_start run -c "$CFG"
  wait_log 'generation 1 started'
  pid=$(logged_pid 1)

  baton_stop
  assert_equal "$BATON_STATUS" 0
  log_has "stopping generation 1 \(pid $pid\) with SIGTERM"
  # It did not wait for the child to become ready first (that takes 10 s; baton_stop waits 30 s at most, but the
  # child never said it was ready).
  run log_has 'generation 1 is ready'
  assert_failure
  pid_gone "$pid"
}

@test "baton keeps one pid: the process started is the child's parent and the one that exits" {
  demo_config
  baton_start run -c "$CFG"
  wait_http "$PORT"
  pid=$(answer_pid "$PORT")

  # It did not fork itself away: the started process is still baton, and the child's parent.
  kill -0 "$BATON_PID"
  assert_equal "$(readlink "/proc/$BATON_PID/exe")" "$(readlink -f "$BATON")"
  assert_equal "$(ppid_of "$pid")" "$BATON_PID"
  assert_equal "$(logged_pid 1)" "$pid"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  log_has 'exiting with status 0'
}
