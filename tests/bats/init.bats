#!/usr/bin/env bats
# baton as a container's init and in a terminal (baton(1) SIGNALS, "BATON AS A CONTAINER'S INIT", TERMINALS): every
# signal has its documented outcome, sent to baton as a plain child and as PID 1 of a PID namespace; zombies are
# reaped; exit statuses pass through; what a generation leaves in its process group is stopped; the terminal's
# foreground follows the program (stty, Ctrl-C, Ctrl-Z and fg, a shell prompt), driven through a real pseudo-terminal.

load 'helpers'

setup() {
  PORT=$(free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  CTL="$BATS_TEST_TMPDIR/ctl.sock"
  SIGLOG="$BATS_TEST_TMPDIR/signals"
}
teardown() { teardown_processes; }

# A program that records every catchable signal it gets in $SIGLOG (one name a line) and keeps running; SIGTERM is
# recorded and ends it with 0.
recorder() {
  py_child recorder <<'PY'
out = open(sys.argv[1], "a", buffering=1)
def got(sig, frame):
    out.write(signal.Signals(sig).name + "\n")
    if sig == signal.SIGTERM:
        sys.exit(0)
for s in range(1, signal.SIGRTMAX + 1):
    if s in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD) or s in (32, 33):
        continue
    try:
        signal.signal(s, got)
    except (OSError, ValueError):
        pass
out.write("ready\n")
while True:
    signal.pause()
PY
}

recorder_config() {
  CFG_READINESS="{type: none}" CFG_STOP="{timeout: 5s}" write_config "$PYTHON" "$(recorder)" "$SIGLOG"
}

siglog_has() { grep -qx -- "$1" "$SIGLOG" 2>/dev/null; }

# The signals baton passes on to the program (baton(1) SIGNALS), by name as python's signal module spells them.
FORWARDED=(SIGQUIT SIGTRAP SIGABRT SIGBUS SIGFPE SIGUSR1 SIGSEGV SIGUSR2 SIGPIPE SIGALRM SIGSTKFLT SIGCONT SIGTSTP
  SIGTTIN SIGTTOU SIGURG SIGXCPU SIGXFSZ SIGVTALRM SIGPROF SIGWINCH SIGIO SIGPWR SIGSYS SIGRTMIN SIGRTMAX)

# Sends each forwarded signal to pid and checks that the program got it and baton is still there; then SIGHUP
# reloads, and SIGTERM stops baton with 0.
every_signal_to() {
  local pid=$1 sig name
  for sig in "${FORWARDED[@]}"; do
    case $sig in
      SIGRTMIN) name=SIGRTMIN; sig=$(kill -l RTMIN) ;;
      SIGRTMAX) name=SIGRTMAX; sig=$(kill -l RTMAX) ;;
      *) name=$sig; sig=${sig#SIG} ;;
    esac
    kill -s "$sig" "$pid"
    wait_for siglog_has "$name" || fail "the program did not get $name"
    kill -0 "$pid" || fail "baton died of $name"
  done
  [[ "$(grep -c . "$SIGLOG")" == $((${#FORWARDED[@]} + 1)) ]] || fail "unexpected signals: $(cat "$SIGLOG")"
}

@test "as a plain child: every signal has its outcome (forwarded to the program, SIGHUP reloads, SIGTERM stops)" {
  recorder_config
  baton_start run -c "$CFG"
  wait_for siglog_has ready
  every_signal_to "$BATON_PID"
  kill -HUP "$BATON_PID"
  wait_log "reload 1 \(received SIGHUP"
  wait_log "reload 1 done"
  kill -INT "$BATON_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  log_has "received SIGINT"
}

# baton as PID 1 of a new PID namespace (unshare), started in the background; sets NS_PID, baton's pid as seen from
# here.
ns_start() {
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  unshare --pid --fork --mount-proc "$BATON" "$@" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  has_child() { [[ -n "$(children_of "$BATON_PID")" ]]; }
  wait_for has_child
  NS_PID=$(children_of "$BATON_PID")
  [[ "$(sed -n 's/^NSpid:.*\t//p' "/proc/$NS_PID/status")" == 1 ]] || fail "baton is not PID 1 of its namespace"
}

@test "as PID 1 of a PID namespace: no signal is dropped, SIGQUIT and the rest reach the program, SIGTERM stops" {
  command -v unshare >/dev/null || fail "unshare is missing (util-linux)"
  recorder_config
  ns_start run -c "$CFG"
  wait_for siglog_has ready
  every_signal_to "$NS_PID"
  kill -HUP "$NS_PID"
  wait_log "reload 1 done"
  kill -TERM "$NS_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
}

@test "as PID 1: baton stop from inside the namespace always gets its answer and exits 0 (20 times)" {
  command -v unshare >/dev/null || fail "unshare is missing (util-linux)"
  command -v nsenter >/dev/null || fail "nsenter is missing (util-linux)"
  # baton's exit as PID 1 kills every process of its namespace, the stop client too: baton waits for it to hang up.
  for i in $(seq 20); do
    rm -f "$CTL"
    ns_start run --set control.socket="$CTL" -- sleep 100000
    wait_for test -S "$CTL"
    run --separate-stderr nsenter --target "$NS_PID" --pid -- "$BATON" stop --control "$CTL"
    echo "round $i: status $status, stdout: $output, stderr: $stderr"
    assert_equal "$status" 0
    assert_equal "$output" stopped
    baton_wait_exit
    assert_equal "$BATON_STATUS" 0
  done
}

@test "as PID 1: a storm of 300 orphans is reaped, none stays a zombie, and baton does not spin meanwhile" {
  command -v unshare >/dev/null || fail "unshare is missing (util-linux)"
  child=$(py_child storm <<'PY'
import os
for _ in range(300):
    if os.fork() == 0:
        if os.fork() == 0:
            os._exit(0)  # an orphan, re-parented to PID 1: baton
        os._exit(0)
    os.wait()
open(sys.argv[1], "w").close()
signal.pause()
PY
  )
  CFG_READINESS="{type: none}" write_config "$PYTHON" "$child" "$BATS_TEST_TMPDIR/forked"
  ns_start run -c "$CFG"
  wait_for test -e "$BATS_TEST_TMPDIR/forked"
  no_zombies() { [[ "$(ps -o stat= --ppid "$NS_PID" | grep -c '^Z')" == 0 ]]; }
  wait_for no_zombies
  # Idle again: baton's context switches do not grow while nothing happens (no polling for children).
  cs() { awk '/ctxt_switches/ {n += $2} END {print n}' "/proc/$NS_PID/status"; }
  one_child() { [[ "$(live_children "$NS_PID")" == 1 ]]; }
  wait_for one_child
  # A second with nothing to do: the count of baton's context switches must not move (a measured interval, not a
  # wait for something to happen).
  before=$(cs)
  read -rt 1 <> <(:) || true
  assert_equal "$(cs)" "$before"
  kill -TERM "$NS_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
}

@test "exit statuses pass through: the program's N (0-255) when restart.policy says stop, 128+N for signal N" {
  for code in 0 1 42 255; do
    CFG_READINESS="{type: none}" CFG_EXTRA="restart: {policy: never}" write_config /bin/sh -c "exit $code"
    run "$BATON" run -c "$CFG"
    assert_equal "$status" "$code"
  done
  CFG_READINESS="{type: none}" CFG_EXTRA="restart: {policy: never}" write_config /bin/sh -c 'kill -USR1 $$'
  run "$BATON" run -c "$CFG"
  assert_equal "$status" $((128 + $(kill -l USR1)))
  # As PID 1 too.
  CFG_READINESS="{type: none}" CFG_EXTRA="restart: {policy: never}" write_config /bin/sh -c "exit 7"
  run unshare --pid --fork --mount-proc "$BATON" run -c "$CFG"
  assert_equal "$status" 7
}

@test "quick use exits with its program, as tini: run -- sh -c 'exit 3' exits 3, a signal N 128+N, as PID 1 too" {
  # Without -c, restart.policy is never: the program's exit is baton's (a container ends with its program).
  run timeout 20 "$BATON" run -- /bin/sh -c 'exit 3'
  assert_equal "$status" 3
  run timeout 20 "$BATON" run -- /bin/sh -c 'kill -KILL $$'
  assert_equal "$status" 137
  run timeout 20 "$BATON" run -- /bin/sh -c 'kill -USR1 $$'
  assert_equal "$status" $((128 + $(kill -l USR1)))
  run timeout 20 "$BATON" run -- /bin/sh -c 'exit 0'
  assert_equal "$status" 0
  run timeout 20 unshare --pid --fork --mount-proc "$BATON" run -- /bin/sh -c 'exit 3'
  assert_equal "$status" 3
  run timeout 20 unshare --pid --fork --mount-proc "$BATON" run -- /bin/sh -c 'kill -KILL $$'
  assert_equal "$status" 137
}

@test "quick use with --set restart.policy=on-failure restarts a failing program; a file keeps on-failure" {
  local runs="$BATS_TEST_TMPDIR/runs"
  baton_start run --set restart.policy=on-failure --set restart.delay=50ms -- \
    /bin/sh -c "echo run >>$runs; exit 3"
  wait_for eval "(( \$(wc -l <$runs 2>/dev/null || echo 0) >= 3 ))"
  kill -0 "$BATON_PID"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  # The same program under a file without restart: the file's default restarts it.
  rm -f "$runs"
  CFG_READINESS="{type: none}" CFG_EXTRA="restart: {delay: 50ms}" write_config /bin/sh -c "echo run >>$runs; exit 3"
  baton_start run -c "$CFG"
  wait_for eval "(( \$(wc -l <$runs 2>/dev/null || echo 0) >= 3 ))"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "a clean exit of a program that is done is logged at info, not as an error" {
  CFG_READINESS="{type: notify, timeout: 10s}" write_config /bin/true
  run --separate-stderr "$BATON" run -c "$CFG"
  assert_equal "$status" 0
  [[ "$stderr" == *"baton: info: generation 1 (pid "*") exited with status 0 before it was ready"* ]] ||
    fail "stderr: $stderr"
  [[ "$stderr" != *"error"* ]] || fail "an error line for a clean exit: $stderr"
}

@test "a stop takes stop.timeout in all: what a slow main process leaves is killed at the stop's deadline, not later" {
  # The main process takes 1.5s to stop and leaves a worker that ignores SIGTERM. With stop.timeout 3s the worker is
  # killed 3s after the stop began (not 1.5s + 3s): within a runtime's grace period (docker's 10s).
  child=$(py_child slow <<'PY'
worker = os.fork()
if worker == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        signal.pause()
def term(sig, frame):
    time.sleep(1.5)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
open(sys.argv[1], "w").write(str(worker))
while True:
    signal.pause()
PY
  )
  local t0 t1 ms mode
  for mode in auto never; do
    rm -f "$BATS_TEST_TMPDIR/worker"
    baton_start run --set program.cgroup=$mode --set stop.timeout=3s -- "$PYTHON" "$child" "$BATS_TEST_TMPDIR/worker"
    wait_for test -s "$BATS_TEST_TMPDIR/worker"
    worker=$(cat "$BATS_TEST_TMPDIR/worker")
    t0=$(date +%s%N)
    kill -TERM "$BATON_PID"
    baton_wait_exit
    t1=$(date +%s%N)
    cat "$BATON_LOG"
    assert_equal "$BATON_STATUS" 0
    pid_gone "$worker"
    # What is left is killed at the stop's deadline (the main process too, on a machine so slow it was not done).
    log_has "(its cgroup|the processes under its keeper \(pid [0-9]+\)) outlived stop.timeout, sending SIGKILL|did not stop within stop.timeout"
    ms=$(((t1 - t0) / 1000000))
    echo "program.cgroup $mode: stopped in ${ms}ms"
    ((ms >= 2900 && ms < 4200)) || fail "program.cgroup $mode: the stop took ${ms}ms, not stop.timeout (3s)"
  done
}

@test "workers left in the program's process group are stopped when it ends, and killed if they ignore that" {
  # sh waits for its background sleep; SIGTERM ends sh, and the sleep must not outlive the generation.
  CFG_READINESS="{type: none}" CFG_STOP="{timeout: 2s}" \
    write_config /bin/sh -c "sleep 1000 & echo \$! >$BATS_TEST_TMPDIR/worker; wait"
  baton_start run -c "$CFG"
  wait_for test -s "$BATS_TEST_TMPDIR/worker"
  worker=$(cat "$BATS_TEST_TMPDIR/worker")
  kill -TERM "$BATON_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  pid_gone "$worker"
  log_has "generation 1 ended, but its (process group [0-9]+|cgroup [^ ]+) still has processes: sending SIGTERM"

  # A worker that ignores SIGTERM gets SIGKILL after stop.timeout; baton waits for it.
  CFG_READINESS="{type: none}" CFG_STOP="{timeout: 1s}" \
    write_config /bin/sh -c "(trap '' TERM; exec sleep 1000) & echo \$! >$BATS_TEST_TMPDIR/stubborn; wait"
  baton_start run -c "$CFG"
  wait_for test -s "$BATS_TEST_TMPDIR/stubborn"
  stubborn=$(cat "$BATS_TEST_TMPDIR/stubborn")
  kill -TERM "$BATON_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  pid_gone "$stubborn"
  log_has "(process group [0-9]+ or its orphans|its cgroup) outlived stop.timeout, sending SIGKILL"
}

# ---- the terminal ----

pty() { "$PYTHON" "$TESTS_DIR/programs/pty-run.py" --timeout 30 --log "$BATS_TEST_TMPDIR/pty.log" -- "$@"; }

@test "a program that touches the terminal gets its foreground: stty under baton does not hang" {
  run pty "$BATON" run -- /bin/sh -c 'stty -echo </dev/tty && stty echo </dev/tty && echo done' <<'SCRIPT'
expect done
wait
SCRIPT
  assert_success
  assert_line "exit 0"
}

@test "Ctrl-C at the terminal ends the program and baton with 130; Ctrl-\\ with 131 (with cgroups and with a keeper)" {
  for mode in auto never; do
    CFG_PROGRAM="  cgroup: $mode" CFG_READINESS="{type: none}" write_config /bin/sh -c 'echo started; exec sleep 1000'
    run pty "$BATON" run -c "$CFG" <<'SCRIPT'
expect started
send \x03
wait
SCRIPT
    assert_success
    assert_line "exit 130"
    run pty "$BATON" run -c "$CFG" <<'SCRIPT'
expect started
send \x1c
wait
SCRIPT
    assert_success
    assert_line "exit 131"
  done
}

@test "Ctrl-Z stops the program and baton with it, fg continues both, and the shell gets its terminal back" {
  ctrl_z never
  ctrl_z auto
}

# The Ctrl-Z test with program.cgroup MODE: with never, the program's stop reaches baton through its keeper.
ctrl_z() {
  CFG_PROGRAM="  cgroup: $1" CFG_READINESS="{type: none}" write_config /bin/sh -c 'echo started; read line; echo read-$line'
  # The prompt is typed as pr''ompt so that the echo of the command itself never looks like it.
  run pty bash --norc --noprofile -i <<SCRIPT
send PS1='pr''ompt> '\r
expect prompt> \$
send "$BATON" run -c "$CFG"\r
expect started
send \x1a
expect Stopped
expect prompt> \$
send fg\r
expect run -c
send hello\r
expect read-hello
expect prompt> \$
send echo "rc=\$?"\r
expect rc=0
send exit\r
wait
SCRIPT
  assert_success
  assert_line "exit 0"
}

@test "a shell under baton gets a prompt and its commands; its exit status is baton's" {
  # Not anchored at the end: baton's own log lines may come after the prompt.
  run pty "$BATON" run --set restart.policy=never -- bash --norc --noprofile -i <<'SCRIPT'
expect bash-[0-9.]+[#$] 
send echo "hi from $((40 + 2))"\r
expect hi from 42
send exit 3\r
wait
SCRIPT
  assert_success
  assert_line "exit 3"
}
