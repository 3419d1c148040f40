#!/usr/bin/env bats
# Fault injection: the child ends with every interesting exit status and signal; fork and exec fail; the new
# generation dies right after READY=1; the old generation is SIGKILLed while it drains; a child closes its listening
# socket or makes it non-blocking; baton runs out of file descriptors; the file system of a unix socket is full; a
# control client connects and never writes; a notify flood hits baton during a reload. In each, the service keeps
# serving or fails the way baton(1) documents it, and baton's own fd count returns to what it was once the first
# generation served (the baseline).

# shellcheck disable=SC2154 # $stderr: set by run --separate-stderr
# shellcheck disable=SC2030,SC2031 # each test runs in a subshell of its own, on purpose

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
  # demo_setup, with a quicker free port (the python3 of free_port may be a slow pyenv shim).
  PORT=$(probe_free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  CTL="$BATS_TEST_TMPDIR/ctl.sock"
  FAULT_SERVER="$TESTS_DIR/programs/fault-server.py"
  FLOODER="$TESTS_DIR/programs/notify-flood.py"
}

teardown() {
  touch "$BATS_TEST_TMPDIR/release" "$BATS_TEST_TMPDIR/flood.stop" # control_hog and the flooders let go
  stop_baton_and_generations
  teardown_processes
  unmount_full_tmpfs
  # Under ASan+UBSan: a report (a leak found when baton exited, say) fails the test.
  local log
  for log in "$BATS_TEST_TMPDIR"/baton.log "$BATS_TEST_TMPDIR"/case*/baton.log; do
    grep -qsE 'Sanitizer|runtime error:' "$log" || continue
    echo "a sanitizer report in $log:" >&2
    cat "$log" >&2
    return 1
  done
}

# ---- helpers ----

# write_config (helpers.bash) under this file's name: fault_config COMMAND [ARG]... The listener "http" on $PORT
# (CFG_LISTENERS replaces it), CFG_PROGRAM (more lines under "program:", indented two spaces), readiness
# CFG_READINESS ("{timeout: 5s}"), stop CFG_STOP ("{timeout: 2s}"), the control socket $CTL, and CFG_EXTRA.
fault_config() { write_config "$@"; }
# The same with tests/programs/fault-server.py as the program.
server_config() { fault_config "$PYTHON" "$FAULT_SERVER"; }

# Starts baton through a wrapper that execs it (so that $! is baton's pid): baton_exec COMMAND... Sets BATON_PID
# and BATON_LOG as baton_start does.
baton_exec() {
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  "$@" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
}

# start_baton (helpers.bash), then once generation 1 is ready, the baseline: start_baton_baseline [ARG]...
start_baton_baseline() {
  start_baton "$@"
  wait_log "generation 1 is ready"
  take_baseline
}

# baton's open fds and resident memory, taken once it serves; the fd count must come back to it after each fault.
# shellcheck disable=SC2012 # fd names are numbers
fd_count() { ls "/proc/$BATON_PID/fd" | wc -l; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$BATON_PID/status"; }
# Once its first generation is ready, baton moves itself into its cgroup leaf (cgroup_tree_settle), two fds open
# meanwhile; under load that write waits long enough for a baseline to count them. So where the program's cgroup is
# baton's, the baseline waits until baton is in its leaf.
baton_settled() {
  local child
  # "(pid N)", "(pid N) in cgroup ..." or, without cgroups, "(pid N, its keeper pid K)".
  child=$(sed -n 's/.*generation 1 started (pid \([0-9]*\).*/\1/p' "$BATON_LOG" | head -n1)
  [[ -n $child ]] || return 1
  grep -q "/baton-$BATON_PID/gen-" "/proc/$child/cgroup" || return 0
  grep -q "^0::.*/baton-$BATON_PID/supervisor\$" "/proc/$BATON_PID/cgroup"
}
take_baseline() {
  wait_for baton_settled
  BASE_FDS=$(fd_count)
  BASE_RSS=$(rss_kb)
}
fds_at_baseline() { (($(fd_count) == BASE_FDS)); }
wait_fds_baseline() {
  wait_for fds_at_baseline && return 0
  echo "baton (pid $BATON_PID) has $(fd_count) fds open, its baseline is $BASE_FDS:" >&2
  ls -l "/proc/$BATON_PID/fd" >&2
  return 1
}
fd_count_is() { (($(fd_count) == $1)); }
# Every fd from 0 to N-1 is open in baton.
fds_full() {
  local fd
  for ((fd = 0; fd < $1; fd++)); do [[ -e "/proc/$BATON_PID/fd/$fd" ]] || return 1; done
}

# One value of `baton status --json` equals EXPECTED: status_is PYTHON_EXPR EXPECTED (for wait_for).
status_is() { [[ "$(status_get "$1")" == "$2" ]]; }
status_ok() { timeout 10 "$BATON" status --control "$CTL" >/dev/null; }
# The generations as [[generation, role, state], ...].
GENS='[[g["generation"], g["role"], g["state"]] for g in d["generations"]]'

reload_ok() {
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_success
  assert_output --partial "reloaded: generation $1 "
}

# No process with this pid exists, not even a zombie.
pid_vanished() { ! ps -p "$1" >/dev/null 2>&1; }

# Teardown: a graceful stop of baton (SIGTERM), and SIGKILL to the generations it still runs (some ignore their stop
# signal), by their process groups, which are theirs alone (baton makes each generation a group leader). Only those:
# another child of baton may be LeakSanitizer's tracer, checking baton as it exits; killing it would hang baton.
stop_baton_and_generations() {
  # Only while it runs: the pid of a baton reaped earlier may belong to someone else by now.
  [[ -n "${BATON_PID:-}" && "$(readlink "/proc/$BATON_PID/exe")" == "$(readlink -f "$BATON")" ]] || return 0
  kill -TERM "$BATON_PID"
  local pid pgid
  while read -r pid pgid; do
    if [[ "$pid" == "$pgid" ]]; then kill -KILL -- "-$pgid" 2>/dev/null || true; fi
  done < <(ps -o pid=,pgid= --ppid "$BATON_PID" 2>/dev/null)
  WAIT_SECONDS=10 baton_wait_exit || true
}

# ---- 1. every exit status and fatal signal ----

EXIT_CASES=(0 1 2 42 126 127 255)
SIGNAL_CASES=(KILL SEGV ABRT TERM BUS)

# Ends the fault-server (pid PID, alone on $PORT) as CASE says: end_child CASE PID. A number is an exit status
# (GET /exit/N), a signal name is sent to it from outside with kill.
end_child() {
  if [[ "$1" =~ ^[0-9]+$ ]]; then
    curl -sS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/exit/$1"
  else
    kill -s "$1" "$2"
  fi
}
# baton's exit status for CASE (N, or 128+N for signal N), and how baton's log says it ended.
expected_status() { if [[ "$1" =~ ^[0-9]+$ ]]; then echo "$1"; else echo $((128 + $(kill -l "$1"))); fi; }
expected_words() { if [[ "$1" =~ ^[0-9]+$ ]]; then echo "exited with status $1"; else echo "was killed by SIG$1"; fi; }

@test "restart.policy never: baton exits with each exit status (0 1 2 42 126 127 255) and 128+N for each fatal signal" {
  # One baton per case, all at once (each with its own port, config, control socket and log): BATON_PID, PORT, CTL,
  # CFG and BATON_LOG are set to a case's before the helpers are used on it.
  local cases=("${EXIT_CASES[@]}" "${SIGNAL_CASES[@]}") i pids=() ports=() gen_pids=()
  for i in "${!cases[@]}"; do
    mkdir "$BATS_TEST_TMPDIR/case$i"
    PORT=$(probe_free_port) CTL="$BATS_TEST_TMPDIR/case$i/ctl.sock" CFG="$BATS_TEST_TMPDIR/case$i/baton.yaml"
    CFG_EXTRA="restart: {policy: never}" server_config
    ports[i]=$PORT
    "$BATON" run -c "$CFG" >"$BATS_TEST_TMPDIR/case$i/baton.log" 2>&1 &
    pids[i]=$!
    track_pid "${pids[i]}"
  done
  for i in "${!cases[@]}"; do
    BATON_LOG="$BATS_TEST_TMPDIR/case$i/baton.log"
    wait_log "generation 1 is ready"
    gen_pids[i]=$(logged_pid 1)
    PORT=${ports[i]}
    end_child "${cases[i]}" "${gen_pids[i]}"
  done
  for i in "${!cases[@]}"; do
    how=${cases[i]} BATON_PID=${pids[i]} BATON_LOG="$BATS_TEST_TMPDIR/case$i/baton.log"
    echo "# case: $how"
    baton_wait_exit
    assert_equal "$BATON_STATUS" "$(expected_status "$how")"
    log_has "generation 1 \(pid ${gen_pids[i]}\) $(expected_words "$how"); restart.policy is never, exiting"
    log_has "exiting with status $(expected_status "$how")\$"
    run log_has "generation 2 started"
    assert_failure
    pid_vanished "${gen_pids[i]}"
    [[ ! -e "$BATS_TEST_TMPDIR/case$i/ctl.sock" ]]
  done
}

@test "restart.policy on-failure: after each failing exit status and fatal signal the next generation serves" {
  # One baton through all the cases: the delay stays 50ms (max-delay), and the fds must not creep up either.
  CFG_EXTRA="restart: {policy: on-failure, delay: 50ms, max-delay: 50ms}" server_config
  start_baton_baseline
  gen=1
  for how in "${EXIT_CASES[@]:1}" "${SIGNAL_CASES[@]}"; do
    echo "# case: $how (generation $gen)"
    pid=$(logged_pid "$gen")
    end_child "$how" "$pid"
    wait_for generation_answers "$PORT" $((gen + 1))
    wait_log "generation $gen \(pid $pid\) $(expected_words "$how"); restarting in 50ms \(failure [0-9]+ in a row\)"
    wait_log "generation $((gen + 1)) is ready"
    pid_vanished "$pid"
    wait_fds_baseline
    gen=$((gen + 1))
  done
  assert_equal "$gen" 12
  assert_equal "$(status_get "[d['state'], d['restarts'], $GENS]")" '["running", 11, [[12, "current", "ready"]]]'
  # A clean exit is not a failure (baton(1), RESTARTS): baton exits 0.
  pid=$(logged_pid "$gen")
  end_child 0 "$pid"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  log_has "generation $gen \(pid $pid\) exited with status 0; restart.policy is on-failure, exiting"
  run log_has "generation $((gen + 1)) started"
  assert_failure
}

# ---- 2. fork and exec failures ----

# The broken programs, as "CASE|COMMAND|PROGRAM_LINE|MESSAGE": each exec failure, a failed chdir and an unknown user
# (baton(1): exit status 102, "reports the failing step and the path").
bad_programs() {
  local d=$BATS_TEST_TMPDIR
  printf '#!/bin/sh\nexit 0\n' >"$d/not-executable"
  chmod 0644 "$d/not-executable"
  mkdir -p "$d/a-directory"
  printf '#!%s/no-such-interpreter\nexit 0\n' "$d" >"$d/bad-interpreter"
  chmod 0755 "$d/bad-interpreter"
  BAD_CASES=(
    "missing|$d/no-such-program||exec $d/no-such-program: No such file or directory"
    "not executable|$d/not-executable||exec $d/not-executable: Permission denied"
    "a directory|$d/a-directory||exec $d/a-directory: Permission denied"
    "bad interpreter|$d/bad-interpreter||exec $d/bad-interpreter: its interpreter $d/no-such-interpreter: No such file or directory"
    "no directory|$BATON_DEMO|  working-directory: $d/no-such-dir|chdir $d/no-such-dir: No such file or directory"
    "unknown user|$BATON_DEMO|  user: baton-faults-no-such-user|user 'baton-faults-no-such-user' does not exist"
  )
}
# Writes $CFG for one of BAD_CASES.
bad_config() {
  local command line
  IFS='|' read -r _ command line _ <<<"$1"
  CFG_PROGRAM="$line" fault_config "$command"
}
bad_message() { IFS='|' read -r _ _ _ msg <<<"$1" && echo "$msg"; }

@test "exec failures at the first start (missing, not executable, a directory, bad #!, chdir, user) exit 102, named" {
  bad_programs
  for c in "${BAD_CASES[@]}"; do
    echo "# case: $c"
    bad_config "$c"
    run --separate-stderr timeout 20 "$BATON" run -c "$CFG"
    echo "status $status, stderr: $stderr"
    assert_equal "$status" 102
    stderr_has "Failed to start the program: $(bad_message "$c")"
    [[ "$stderr" != *"generation 1 started"* ]]
    [[ ! -e "$CTL" ]]
  done
}

@test "the same failures on reload: baton reload exits 1 with the reason, generation 1 keeps serving, fds at baseline" {
  bad_programs
  demo_config
  start_baton_baseline
  pid1=$(answer_pid "$PORT")
  for c in "${BAD_CASES[@]}"; do
    echo "# case: $c"
    bad_config "$c"
    run timeout 20 "$BATON" reload -c "$CFG"
    assert_failure 1
    assert_output --partial "could not start the program: $(bad_message "$c"); generation 1 keeps serving"
    assert_equal "$(answer_pid "$PORT")" "$pid1"
    assert_equal "$(live_children "$BATON_PID")" 1
    wait_fds_baseline
  done
  assert_equal "$(status_get "[d['state'], d['last_reload']['ok'], $GENS]")" \
    '["running", false, [[1, "current", "ready"]]]'

  demo_config
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_success
  assert_output --regexp "reloaded: generation [0-9]+ "
  [[ "$(answer_pid "$PORT")" != "$pid1" ]]
  wait_fds_baseline
}

# A file with the x bit but no #! and no executable format: execve() fails with ENOEXEC. glibc's execvp()/execvpe()
# then run the file with /bin/sh (POSIX's fallback for scripts without #!), so the middle line below would run.
not_a_program() {
  local f=$BATS_TEST_TMPDIR/not-a-program
  printf '\001\002\003 this is not a program\ntouch %s/ran-as-a-shell-script\n\001\002\003\n' "$BATS_TEST_TMPDIR" >"$f"
  chmod 0755 "$f"
  echo "$f"
}

@test "exec of a file that is not a program (ENOEXEC, no #!) at the first start exits 102 with Exec format error" {
  prog=$(not_a_program)
  fault_config "$prog"
  run --separate-stderr timeout 20 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  [[ ! -e "$BATS_TEST_TMPDIR/ran-as-a-shell-script" ]] || echo "the file was run by /bin/sh" >&2
  assert_equal "$status" 102
  stderr_has "Failed to start the program: exec $prog: Exec format error (a script needs a \"#!\" line naming its interpreter, such as #!/bin/sh)"
  [[ ! -e "$BATS_TEST_TMPDIR/ran-as-a-shell-script" ]]
}

@test "exec of a file that is not a program (ENOEXEC) on reload fails with Exec format error; generation 1 serves" {
  demo_config
  start_baton_baseline
  pid1=$(answer_pid "$PORT")
  prog=$(not_a_program)
  fault_config "$prog"
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  wait_fds_baseline
  assert_output --partial "could not start the program: exec $prog: Exec format error (a script needs a \"#!\" line naming its interpreter, such as #!/bin/sh); generation 1 keeps serving"
  [[ ! -e "$BATS_TEST_TMPDIR/ran-as-a-shell-script" ]]
}

# fork() failing on cue: RLIMIT_NPROC of 1 for a baton that runs as an unprivileged uid of its own (root ignores the
# limit; no other process has this uid, so baton alone reaches it and its next fork() gets EAGAIN).
FAULT_UID=61613
as_fault_user() {
  [[ "$(id -u)" == 0 ]] || skip "needs root to run baton as uid $FAULT_UID (uid $(id -u))"
  AS_USER=(setpriv "--reuid=$FAULT_UID" "--regid=$FAULT_UID" --clear-groups)
  # The uid must reach its files: the config, the demo, and a directory for the control socket.
  public_bins BATON BATON_DEMO
  mkdir -p "$BATS_TEST_TMPDIR/u"
  chown "$FAULT_UID:$FAULT_UID" "$BATS_TEST_TMPDIR/u"
  CTL="$BATS_TEST_TMPDIR/u/ctl.sock"
  [[ -z "$(ps -o pid= -u "$FAULT_UID")" ]]
}

@test "fork failure at the first start (RLIMIT_NPROC 1, unprivileged baton) exits 102 naming fork" {
  as_fault_user
  demo_config
  # LeakSanitizer's check at exit needs a clone() of its own, which the limit refuses too.
  run --separate-stderr env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" \
    timeout 20 prlimit --nproc=1:1 "${AS_USER[@]}" "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 102
  stderr_has "Failed to start the program: fork: Resource temporarily unavailable"
  [[ ! -e "$CTL" ]]
}

@test "fork failure on reload fails it (generation 1 serves); after a crash the restart retries until fork works" {
  as_fault_user
  CFG_EXTRA="restart: {delay: 50ms, max-delay: 200ms}" demo_config
  baton_exec "${AS_USER[@]}" "$BATON" run -c "$CFG"
  wait_for generation_answers "$PORT" 1
  wait_log "generation 1 is ready"
  take_baseline
  pid1=$(answer_pid "$PORT")
  # As the uid itself: root may lack CAP_SYS_RESOURCE (in a container), which setting another uid's limit needs.
  # The soft limit only, so that the uid can raise it again.
  nproc=$("${AS_USER[@]}" prlimit --pid "$BATON_PID" --nproc --output SOFT --noheadings)
  nproc=${nproc// /}
  [[ -n "$nproc" ]]
  "${AS_USER[@]}" prlimit --pid "$BATON_PID" --nproc=1:

  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial \
    "could not start the program: fork: Resource temporarily unavailable; generation 1 keeps serving"
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  wait_fds_baseline

  # The crash: each restart fails to fork and is retried (baton(1), RESTARTS), the socket stays open.
  kill -KILL "$pid1"
  wait_log \
    "failed to start the program: fork: Resource temporarily unavailable; restarting in 100ms \(failure 2 in a row\)"
  kill -0 "$BATON_PID"
  port_listening "$PORT"
  "${AS_USER[@]}" prlimit --pid "$BATON_PID" "--nproc=$nproc:"
  wait_for generation_answers "$PORT" 2
  wait_for status_is "[d['state'], $GENS]" '["running", [[2, "current", "ready"]]]'
  wait_fds_baseline
  reload_ok 3
  wait_fds_baseline
}

# ---- 3. the new generation dies right after READY=1 ----

@test "a new generation that dies right after READY=1: the reload succeeded, its death is a crash, a restart serves" {
  # The old generation drains slowly (it ignores SIGTERM), so the new one dies before the old one is gone.
  CFG_STOP="{timeout: 1s}" demo_config --ignore-sigterm
  start_baton_baseline
  pid1=$(answer_pid "$PORT")
  track_pid "$pid1"

  # Generation 2 reports READY=1 and exits 3 at once; the restarts of the same config serve.
  # shellcheck disable=SC2016 # for the sh of the child
  fault_config sh -c 'if [ $BATON_GENERATION = 2 ]; then exec $0 --exit-after-ready 3; fi; exec $0' "$BATON_DEMO"
  reload_ok 2
  # baton(1), RELOAD: "the reload has succeeded by then (the old generation was told to stop), so this is a crash
  # of the current generation: restart.policy applies".
  wait_log "generation 2 \(pid [0-9]+\) exited with status 3; restarting in 100ms \(failure 1 in a row\)"
  wait_log "stopping generation 1 \(pid $pid1\) with SIGTERM"
  wait_for generation_answers "$PORT" 3
  wait_gone "$pid1"
  wait_log "generation 1 \(pid $pid1\) was killed by SIGKILL"
  wait_for status_is "[d['state'], d['restarts'], d['last_reload']['ok'], $GENS]" \
    '["running", 1, true, [[3, "current", "ready"]]]'
  assert_equal "$(live_children "$BATON_PID")" 1
  wait_fds_baseline
}

# ---- 4. SIGKILL of the old generation mid-drain ----

@test "SIGKILL of the old generation while it drains: baton reaps it at once (no zombie), only the new one is left" {
  CFG_STOP="{timeout: 30s}" demo_config --ignore-sigterm
  start_baton_baseline
  pid1=$(answer_pid "$PORT")
  track_pid "$pid1"
  reload_ok 2
  # Both serve meanwhile: generation 1 ignored its SIGTERM.
  wait_for status_is "$GENS" '[[2, "current", "ready"], [1, "old", "stopping"]]'
  pid_exists "$pid1"

  kill -KILL "$pid1"
  wait_log "generation 1 \(pid $pid1\) was killed by SIGKILL"
  wait_for pid_vanished "$pid1"
  wait_for status_is "[d['state'], $GENS]" '["running", [[2, "current", "ready"]]]'
  # Reaped on the kill, not at stop.timeout.
  run log_has "did not stop within stop.timeout"
  assert_failure
  assert_equal "$(live_children "$BATON_PID")" 1
  # shellcheck disable=SC2009 # zombies: pgrep cannot select by state
  assert_equal "$(ps -o stat= --ppid "$BATON_PID" | grep -c '^Z' || true)" 0
  assert_equal "$(answer_generation "$PORT")" 2
  wait_fds_baseline
}

# ---- 5. a child that closes its socket, or makes it non-blocking ----

@test "a child that closes its listening socket: baton still holds it, a client waits in the backlog, a reload serves" {
  server_config
  start_baton_baseline
  pid1=$(answer_pid "$PORT")
  curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/close"
  wait_for test ! -e "/proc/$pid1/fd/3"

  # Generation 1 serves nothing any more, but the socket is baton's too: it still listens, and a client is not
  # refused; it waits in the backlog.
  port_listening "$PORT"
  bg_run queued curl -fsS --max-time 20 "http://127.0.0.1:$PORT/"
  wait_for client_connected "$PORT"
  run bg_done queued
  assert_failure

  reload_ok 2
  wait_for bg_done queued
  assert_equal "$(bg_rc queued)" 0
  run bg_out queued
  assert_output --partial "generation=2 "
  wait_log "generation 1 \(pid $pid1\) was killed by SIGTERM"
  wait_for status_is "[d['state'], $GENS]" '["running", [[2, "current", "ready"]]]'
  wait_fds_baseline
}

@test "a child that shuts its listening socket down: it stops listening for all; a reload must make it listen again" {
  server_config
  start_baton_baseline
  curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/shutdown"
  # shutdown(2) acts on the socket, not on one fd: baton's copy stops listening as well, and clients are refused.
  wait_for bash -c "! ss -Htln '( sport = :$PORT )' | grep -q ."
  run curl -sS --max-time 5 "http://127.0.0.1:$PORT/"
  assert_failure

  # baton(1): a reload starts "a new generation on the very same sockets" and "connections are never refused".
  # That socket is still bound (a TCP socket shut down in LISTEN keeps its port): it listens again after a listen(),
  # which the reload must do (SO_ACCEPTCONN is 0), or the new generation gets a socket it cannot serve on.
  demo_config
  reload_ok 2
  wait_for generation_answers "$PORT" 2
  wait_for status_is "[d['state'], $GENS]" '["running", [[2, "current", "ready"]]]'
  wait_fds_baseline
}

# The O_NONBLOCK flag of baton's own fd for the socket listening on 127.0.0.1:PORT (from /proc: fdinfo's flags are
# those of the open file, which dup() and fork() share).
baton_listener_nonblock() {
  local inode fd flags
  inode=$(awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }' \
    /proc/net/tcp)
  for fd in "/proc/$BATON_PID/fd/"*; do
    [[ "$(readlink "$fd")" == "socket:[$inode]" ]] || continue
    flags=$(awk '/^flags:/ { print $2 }' "/proc/$BATON_PID/fdinfo/${fd##*/}")
    echo $(((8#$flags >> 11) & 1)) # O_NONBLOCK is 04000
    return 0
  done
  return 1
}

@test "a child that sets O_NONBLOCK on its socket: the flag is shared, the next generation gets it, both still serve" {
  server_config
  start_baton_baseline
  run demo_answer "$PORT"
  assert_output --partial "generation=1 nonblock=0"
  assert_equal "$(baton_listener_nonblock "$PORT")" 0

  curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/nonblock"
  # The flag belongs to the open file description, which baton's fd and every generation's fd 3 share: baton's
  # copy is non-blocking now too, and baton does not reset it for the next generation (unlike systemd, which sets
  # O_NONBLOCK per NonBlocking= on each start: it could not do that here without changing it under a generation
  # that still drains).
  assert_equal "$(baton_listener_nonblock "$PORT")" 1
  assert_equal "$(answer_generation "$PORT")" 1

  reload_ok 2
  run demo_answer "$PORT"
  assert_output --partial "generation=2 nonblock=1"
  wait_for status_is "[d['state'], $GENS]" '["running", [[2, "current", "ready"]]]'
  assert_equal "$(answer_generation "$PORT")" 2
  wait_fds_baseline
}

# ---- 6. fd exhaustion ----

@test "fd exhaustion at start (ulimit -n 16, 20 listeners): baton exits 111 naming the listener and EMFILE" {
  CFG_LISTENERS=$(for i in $(seq 1 20); do echo "  - {name: l$i, address: \"unix:@baton-faults-$$-$RANDOM-$i\"}"; done)
  fault_config "$BATON_DEMO"
  # Soft and hard limit both: baton raises its soft limit up to the hard one.
  run --separate-stderr timeout 20 bash -c 'ulimit -n 16 && exec "$@"' bash "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  [[ "$stderr" =~ listener\ \'l[0-9]+\'\ \(unix:@baton-faults-[0-9-]+\):\ socket:\ Too\ many\ open\ files ]]
  [[ "$stderr" != *"generation 1 started"* ]]
  [[ ! -e "$CTL" ]]
}

# Holds 40 connections to the control socket, sending nothing, until $BATS_TEST_TMPDIR/release exists (30s at most).
control_hog() {
  "$PYTHON" - "$CTL" "$BATS_TEST_TMPDIR/release" <<'PY'
import os, socket, sys, time
path, release = sys.argv[1], sys.argv[2]
socks = []
for _ in range(40):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    socks.append(s)
print("connected", len(socks), flush=True)
deadline = time.monotonic() + 30
while not os.path.exists(release) and time.monotonic() < deadline:
    time.sleep(0.02)
for s in socks:
    s.close()
PY
}

@test "fd exhaustion at run time (ulimit -n 24): control connections hit EMFILE; baton keeps serving, then reloads" {
  demo_config
  baton_exec bash -c 'ulimit -n 24 && exec "$@"' bash "$BATON" run -c "$CFG"
  wait_for generation_answers "$PORT" 1
  wait_log "generation 1 is ready"
  take_baseline
  ((BASE_FDS < 24))

  bg_run hog control_hog
  wait_log "Failed to accept a control connection, pausing for 1s: Too many open files"
  # At once, before baton drops the idle clients (5s): a reload now fails, saying why.
  kill -HUP "$BATON_PID"
  wait_log "reload 1 failed: .*Too many open files.*; generation 1 keeps serving"
  # Every fd number under the limit is taken (baton may hold fds inherited above it, which do not count), and the
  # program serves on.
  wait_for fds_full 24
  assert_equal "$(answer_generation "$PORT")" 1
  kill -0 "$BATON_PID"

  touch "$BATS_TEST_TMPDIR/release"
  wait_for bg_done hog
  wait_for status_ok
  reload_ok 2
  wait_for status_is "[d['state'], $GENS]" '["running", [[2, "current", "ready"]]]'
  wait_fds_baseline
}

# ---- 7. a full file system under a unix socket path ----

# Mounts a tmpfs with 3 inodes at $MNT and uses them up (the root directory takes one): bind() of a unix socket
# there fails with ENOSPC. Filling its data blocks instead would not do: a socket file takes an inode, no block.
mount_full_tmpfs() {
  [[ "$(id -u)" == 0 ]] || skip "needs root to mount a tmpfs (uid $(id -u))"
  MNT="$BATS_TEST_TMPDIR/full"
  mkdir -p "$MNT"
  mount -t tmpfs -o size=64k,nr_inodes=3,mode=0755 tmpfs "$MNT"
  touch "$MNT/fill-1" "$MNT/fill-2"
  run touch "$MNT/fill-3"
  assert_failure
}
unmount_full_tmpfs() {
  [[ -n "${MNT:-}" ]] && mountpoint -q "$MNT" || return 0
  # A bound unix socket pins the mount: baton must be gone first (teardown_processes SIGKILLed it).
  [[ -z "${BATON_PID:-}" ]] || WAIT_SECONDS=5 wait_for pid_gone "$BATON_PID" || true
  umount "$MNT" 2>/dev/null || umount -l "$MNT"
}

@test "full file system at start: a unix listener or the control socket there makes baton exit 111 with ENOSPC" {
  mount_full_tmpfs
  CFG_LISTENERS="  - {name: app, address: \"unix:$MNT/app.sock\"}" fault_config "$BATON_DEMO"
  run --separate-stderr timeout 20 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "listener 'app' (unix:$MNT/app.sock): bind: No space left on device"
  [[ "$stderr" != *"generation 1 started"* ]]

  CTL="$MNT/ctl.sock" demo_config
  run --separate-stderr timeout 20 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "cannot bind control socket $MNT/ctl.sock: No space left on device"
  [[ "$stderr" != *"generation 1 started"* ]]
  # Neither left a socket file behind, nor a listener open: the port is free again.
  run port_listening "$PORT"
  assert_failure
}

@test "full file system on reload: adding a unix listener there fails the reload (ENOSPC); generation 1 serves" {
  mount_full_tmpfs
  demo_config
  start_baton_baseline
  pid1=$(answer_pid "$PORT")

  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: app, address: \"unix:$MNT/app.sock\"}" demo_config
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial \
    "listener 'app' (unix:$MNT/app.sock): bind: No space left on device; generation 1 keeps serving"
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  wait_for status_is "[d['state'], [l['name'] for l in d['listeners']], $GENS]" \
    '["running", ["http"], [[1, "current", "ready"]]]'
  wait_fds_baseline

  # Room again: the same reload goes through.
  rm "$MNT/fill-1"
  reload_ok 2
  [[ -S "$MNT/app.sock" ]]
  assert_equal "$(status_get '[l["name"] for l in d["listeners"]]')" '["http", "app"]'
  assert_equal "$(answer_generation "$PORT")" 2
}

# ---- 8. a control client that connects and never writes ----

# A control client that connects, sends $2 (maybe nothing) and no newline, then reads until baton closes; prints
# "connected", then "closed after MS ms, got DATA".
silent_client() {
  "$PYTHON" - "$CTL" "$1" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode())
print("connected", flush=True)
t = time.monotonic()
s.settimeout(20)
data = s.recv(100)
print("closed after %d ms, got %r" % ((time.monotonic() - t) * 1000, data), flush=True)
PY
}
client_connected_ctl() { grep -q '^connected' "$BATS_TEST_TMPDIR/$1.out"; }
closed_after_ms() { sed -n 's/^closed after \([0-9]*\) ms.*/\1/p' "$BATS_TEST_TMPDIR/$1.out"; }

@test "a control client that never writes (or half a line) is dropped after 5s; others are served; fds at baseline" {
  demo_config
  start_baton_baseline --log-level debug

  bg_run silent silent_client ""
  bg_run half silent_client "sta"
  wait_for client_connected_ctl silent
  wait_for client_connected_ctl half
  wait_for fd_count_is $((BASE_FDS + 2))
  # Meanwhile every other request is served.
  status_ok
  assert_equal "$(answer_generation "$PORT")" 1
  reload_ok 2
  run bg_done silent
  assert_failure

  wait_for bg_done silent
  wait_for bg_done half
  for c in silent half; do
    assert_equal "$(bg_rc "$c")" 0
    run bg_out "$c"
    assert_output --regexp "closed after [0-9]+ ms, got b''"
    ms=$(closed_after_ms "$c")
    ((ms >= 4000 && ms <= 9000))
  done
  assert_equal "$(grep -c 'sent no request in time, dropping it' "$BATON_LOG")" 2
  wait_fds_baseline
  status_ok
}

# ---- 9. notify floods ----

# baton's RSS is back near its baseline. glibc keeps some freed memory, hence a margin; ASan's quarantine keeps
# every freed block for a while, hence a larger one there.
rss_margin_kb() { if ldd "$BATON" | grep -q libasan; then echo 65536; else echo 1024; fi; }
rss_at_baseline() { (($(rss_kb) <= BASE_RSS + $(rss_margin_kb))); }
wait_rss_baseline() {
  wait_for rss_at_baseline && return 0
  echo "baton's VmRSS is $(rss_kb) kB, its baseline $BASE_RSS kB (margin $(rss_margin_kb) kB)" >&2
  return 1
}

@test "a notify flood (100,000 datagrams) from the current generation during a reload: it completes, baton answers" {
  CFG_PROGRAM="  environment: {FAULT_FLOOD_OUT: \"$BATS_TEST_TMPDIR/flood\"}" server_config
  start_baton_baseline
  curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/flood/100000"
  # 100,000 sent, and the flood goes on (until flood.stop, or until its generation ends).
  WAIT_SECONDS=120 wait_for test -e "$BATS_TEST_TMPDIR/flood.counted"

  # The new generation takes a second to get ready; its READY=1 must get through the flood.
  CFG_PROGRAM="  environment: {FAULT_READY_DELAY_MS: \"1000\"}" server_config
  bg_run reload timeout 120 "$BATON" reload -c "$CFG"
  wait_log "reload 1 \(control: reload\)"
  # baton answers status and the program serves while the flood goes on (it goes on until flood.stop exists).
  status_ok
  assert_equal "$(answer_generation "$PORT")" 1
  WAIT_SECONDS=120 wait_for bg_done reload
  run bg_out reload
  assert_output --partial "reloaded: generation 2 "
  assert_equal "$(bg_rc reload)" 0
  wait_for generation_answers "$PORT" 2
  status_ok

  # The flood is a process of generation 1: it ends with it (baton(1) SIGNALS: what a generation leaves in its
  # process group gets stop.signal).
  WAIT_SECONDS=60 wait_for test -e "$BATS_TEST_TMPDIR/flood.done"
  run cat "$BATS_TEST_TMPDIR/flood.done"
  assert_output --regexp '^sent [0-9]{6,}$'
  log_has "generation 1 ended, but its (process group [0-9]+|cgroup [^ ]+) still has processes: sending SIGTERM"
  wait_for status_is "[d['state'], d['last_reload']['ok'], $GENS]" '["running", true, [[2, "current", "ready"]]]'
  # The junk was seen and dropped; baton's memory and fds are back where they were.
  log_has "dropped a malformed notify message from pid [0-9]+ \(generation 1\)"
  log_has "dropped an oversized notify message"
  wait_fds_baseline
  wait_rss_baseline
}

# 10,000 here, not 100,000: baton looks the sender of each datagram up through /proc, up its parent chain (a dozen
# processes under bats), before it drops it; that takes it about 10 times as long per datagram as a generation's.
@test "a notify flood (10,000 datagrams) from a process outside every generation is dropped: no effect" {
  server_config
  start_baton_baseline
  pid1=$(answer_pid "$PORT")
  notify_socket=$(tr '\0' '\n' <"/proc/$pid1/environ" | sed -n 's/^NOTIFY_SOCKET=//p')
  [[ "$notify_socket" == */notify-"$BATON_PID".sock ]]

  bg_run flood env "NOTIFY_SOCKET=$notify_socket" "$PYTHON" "$FLOODER" 10000 "$BATS_TEST_TMPDIR/flood"
  wait_for test -e "$BATS_TEST_TMPDIR/flood.started"
  status_ok
  assert_equal "$(answer_generation "$PORT")" 1
  [[ ! -e "$BATS_TEST_TMPDIR/flood.done" ]]
  touch "$BATS_TEST_TMPDIR/flood.stop"

  WAIT_SECONDS=120 wait_for bg_done flood
  assert_equal "$(bg_rc flood)" 0
  run cat "$BATS_TEST_TMPDIR/flood.done"
  assert_output --regexp '^sent [0-9]{5,}$'
  # Nothing of it counted: no STATUS= taken, no READY=1 acted on, nothing parsed (no "malformed" warning).
  assert_equal "$(status_get "[d['state'], d['restarts'], d['last_reload']]")" '["running", 0, null]'
  assert_equal "$(status_get "[g['status'] for g in d['generations']]")" '[null]'
  assert_equal "$(status_get "$GENS")" '[[1, "current", "ready"]]'
  run log_has "malformed"
  assert_failure
  run log_has "FDSTORE"
  assert_failure
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  wait_fds_baseline
  wait_rss_baseline
}
