#!/usr/bin/env bats
# Nothing outlives its generation (baton(1) "what outlives what", baton.yaml(5) program.cgroup): a daemon that
# renamed itself (redis-server rewrites its process title, and with it the memory /proc/PID/environ shows), a
# program that double-forks and calls setsid(), one that clears its environment and re-execs: each is killed with its
# generation. Every such test runs twice: with a cgroup per generation (program.cgroup: required, so that a machine
# without cgroup v2 fails the test instead of skipping it; this machine's cgroup2 hierarchy, pure or hybrid), and
# with the fallback (program.cgroup: never: process groups and the orphans baton adopts). Then the notify sender
# check by cgroup, the status figures, an exec probe's own cgroup, `required` where no cgroup can be had, and that
# baton removes the cgroups it created.

load 'helpers'

setup() {
  demo_setup
  T=$BATS_TEST_TMPDIR
}
teardown() {
  disown -a 2>/dev/null || true
  teardown_processes
  # own_cgroup_batons' cgroup, empty once its batons are gone (a failed test may leave it; nothing runs in it).
  [[ -z "${SCOPE:-}" ]] || rmdir "$SCOPE" 2>/dev/null || true
  # A redis a failing test left behind (by the port of this test only).
  local p
  for p in $(pgrep -f "redis-server 127.0.0.1:(${R1:-0}|${R2:-0})\b" || true); do kill -KILL "$p" 2>/dev/null || true; done
}

# The cgroup2 hierarchy of this machine and this shell's cgroup in it.
cg_root() {
  if [[ "$(stat -fc %T /sys/fs/cgroup)" == cgroup2fs ]]; then echo /sys/fs/cgroup; else echo /sys/fs/cgroup/unified; fi
}
cg_dir() { echo "$(cg_root)$(sed -n 's/^0:://p' /proc/self/cgroup | sed 's|^/$||')"; }

# program.cgroup for MODE: "cgroup" (required in the file) or "never" (the file says nothing, so auto, and the
# command line says never: --set, which a reload applies again).
mode_line() { if [[ "$1" == cgroup ]]; then echo "  cgroup: required"; else echo "  environment: {}"; fi; }
mode_set() { [[ "$MODE" == cgroup ]] || echo --set program.cgroup=never; }

# The log says whether generation N got a cgroup, as MODE wants.
assert_mode() {
  if [[ "$1" == cgroup ]]; then
    log_has "generation $2 started \(pid [0-9]+\) in cgroup [^ ]+/gen-$2"
  else
    log_has "generation $2 started \(pid [0-9]+, its keeper pid [0-9]+\)$"
  fi
}

refused() { ! bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
# No process calls itself "redis-server 127.0.0.1:PORT" (its process title) or has PORT in its command line.
no_redis() { ! pgrep -f "redis-server.*[: ]$1\b" >/dev/null; }
redis_gone() { no_redis "$1" && refused "$1"; }

# Writes $CFG: redis-server daemonized (its default process title), on port $1, pidfile readiness on file $2 (the
# pid file redis writes is $T/redis-$1.pid: a different $2 is one that never appears), readiness timeout $3.
redis_config() {
  command -v redis-server >/dev/null || fail "redis-server is missing (contrib/deps.sh --test installs it)"
  CFG_PROGRAM="$(mode_line "$MODE")" \
    CFG_READINESS="{type: pidfile, pid-file: \"$2\", interval: 50ms, timeout: $3}" \
    CFG_EXTRA="restart: {policy: never}" \
    write_config /usr/bin/redis-server --port "$1" --bind 127.0.0.1 --daemonize yes --pidfile "$T/redis-$1.pid" \
    --dir "$T" --logfile "$T/redis-$1.log"
}

redis_reload_fails() {
  MODE=$1
  R1=$(free_port) R2=$(free_port)
  redis_config "$R1" "$T/redis-$R1.pid" 10s
  # shellcheck disable=SC2046
  baton_start run -c "$CFG" $(mode_set)
  wait_log "generation 1 is ready"
  assert_mode "$MODE" 1
  port_open "$R1"
  daemon=$(cat "$T/redis-$R1.pid")
  # The daemon renamed itself: its title is not its command line, and its environment no longer names its
  # generation (what the fallback used to rely on).
  [[ "$(tr '\0' ' ' <"/proc/$daemon/cmdline")" == *"redis-server 127.0.0.1:$R1"* ]] ||
    fail "redis did not set its process title: $(tr '\0' ' ' <"/proc/$daemon/cmdline")"
  ! tr '\0' '\n' <"/proc/$daemon/environ" | grep -q '^BATON_GENERATION=' ||
    fail "redis' environment still shows BATON_GENERATION"

  # The new generation's redis starts (port R2) but its pid file never appears where readiness looks.
  redis_config "$R2" "$T/never.pid" 2s
  wait_for port_open "$R1"
  run timeout 60 "$BATON" reload -c "$CFG"
  assert_failure
  assert_output --partial "not ready within 2s"
  wait_for redis_gone "$R2"
  # The old generation's daemon serves on.
  port_open "$R1"
  kill -0 "$daemon"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  wait_for redis_gone "$R1"
}

@test "redis (pidfile, its own title): a failed reload leaves none of the new daemon; cgroups" {
  redis_reload_fails cgroup
}
@test "redis (pidfile, its own title): a failed reload leaves none of the new daemon; fallback" {
  redis_reload_fails never
}

redis_stop_while_waiting() {
  MODE=$1
  R1=$(free_port)
  redis_config "$R1" "$T/never.pid" 60s
  # shellcheck disable=SC2046
  baton_start run -c "$CFG" $(mode_set)
  wait_for port_open "$R1"
  wait_log "waiting for its daemon"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  assert_mode "$MODE" 1
  wait_for redis_gone "$R1"
}

@test "redis: a stop while baton waits for the pid file leaves no redis; cgroups" {
  redis_stop_while_waiting cgroup
}
@test "redis: a stop while baton waits for the pid file leaves no redis; fallback" {
  redis_stop_while_waiting never
}

redis_sigkill() {
  MODE=$1
  R1=$(free_port)
  redis_config "$R1" "$T/redis-$R1.pid" 10s
  # shellcheck disable=SC2046
  baton_start run -c "$CFG" $(mode_set)
  wait_log "generation 1 is ready"
  assert_mode "$MODE" 1
  kill -KILL "$(cat "$T/redis-$R1.pid")"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 137
  wait_for redis_gone "$R1"
}

@test "redis: SIGKILL of the daemon: baton exits 137 and no redis is left; cgroups" {
  redis_sigkill cgroup
}
@test "redis: SIGKILL of the daemon: baton exits 137 and no redis is left; fallback" {
  redis_sigkill never
}

# A program that leaves, beside its main process, a double-forked setsid() daemon (its own session and group, its
# parent gone) and a child that cleared its environment, left the group and re-exec'd: their pids in $T/N.daemon
# and $T/N.envless, N from BATON_GENERATION.
escapees_config() {
  cat >"$T/escape.sh" <<'SH'
#!/bin/sh
n=$BATON_GENERATION
( setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec sleep 1000' "$T/$n.daemon" & )
setsid env -i /bin/sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec sleep 1001' "$T/$n.envless" &
exec sleep 1002
SH
  chmod +x "$T/escape.sh"
  CFG_PROGRAM="  environment: {T: \"$T\"}"$'\n'"$([[ "$1" != cgroup ]] || mode_line cgroup)" CFG_READINESS="{type: none}" \
    write_config "$T/escape.sh"
}

escapees() {
  MODE=$1
  escapees_config "$MODE"
  # shellcheck disable=SC2046
  baton_start run -c "$CFG" $(mode_set)
  wait_for test -s "$T/1.daemon"
  wait_for test -s "$T/1.envless"
  d1=$(cat "$T/1.daemon") e1=$(cat "$T/1.envless")
  # They did escape: another session, and no BATON_GENERATION in the environment of the second.
  [[ "$(ps -o sid= -p "$d1" | tr -d ' ')" == "$d1" ]] || fail "the daemon did not call setsid()"
  [[ "$(ps -o sid= -p "$e1" | tr -d ' ')" == "$e1" ]] || fail "the child did not call setsid()"
  ! tr '\0' '\n' <"/proc/$e1/environ" | grep -q '^BATON_GENERATION=' || fail "env -i kept BATON_GENERATION"
  # A reload replaces generation 1: what it left goes with it; generation 2's own stay.
  run timeout 60 "$BATON" reload -c "$CFG"
  assert_success
  wait_for test -s "$T/2.daemon"
  wait_for test -s "$T/2.envless"
  wait_gone "$d1"
  wait_gone "$e1"
  d2=$(cat "$T/2.daemon") e2=$(cat "$T/2.envless")
  kill -0 "$d2"
  kill -0 "$e2"
  assert_mode "$MODE" 2
  baton_stop
  assert_equal "$BATON_STATUS" 0
  pid_gone "$d2"
  pid_gone "$e2"
}

@test "a double-forked setsid() daemon and an env -i re-exec are killed with their generation; cgroups" {
  escapees cgroup
}
@test "a double-forked setsid() daemon and an env -i re-exec are killed with their generation; fallback" {
  escapees never
}

@test "notify with cgroups: READY=1 from an orphaned setsid() process of the generation's cgroup counts; a stranger's does not" {
  cat >"$T/notify.sh" <<'SH'
#!/bin/sh
echo "$NOTIFY_SOCKET" >"$T/socket"
# The sender is neither the main process, nor in its process group, nor its descendant any more (its parent exits).
( setsid sh -c 'while [ ! -e "$T/go" ]; do sleep 0.05; done; exec "$PY" -c "$SEND" READY=1' & )
exec sleep 1000
SH
  chmod +x "$T/notify.sh"
  # One line: YAML folds the lines of a flow scalar.
  send='import os, socket, sys; a = os.environ["NOTIFY_SOCKET"]; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(sys.argv[1].encode(), "\0" + a[1:] if a.startswith("@") else a)'
  CFG_PROGRAM="  cgroup: required"$'\n'"  environment: {T: \"$T\", PY: \"$PYTHON\", SEND: '${send//\'/\'\'}'}" \
    CFG_READINESS="{type: notify, timeout: 20s}" write_config "$T/notify.sh"
  baton_start run -c "$CFG" --log-level debug
  wait_for test -s "$T/socket"
  # A stranger (this shell's child, in no generation's cgroup) is not heard.
  NOTIFY_SOCKET=$(cat "$T/socket") "$PYTHON" -c "$send" READY=1
  wait_log "dropped a notify message from pid [0-9]+, which is not one of baton's generations"
  run log_has "generation 1 is ready"
  assert_failure
  touch "$T/go"
  wait_log "generation 1 is ready"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

status_figures() {
  MODE=$1
  CFG_PROGRAM="$(mode_line "$MODE")" CFG_READINESS="{type: none}" \
    write_config /bin/sh -c "sleep 1000 & sleep 1001 & echo x >$T/up; wait"
  # shellcheck disable=SC2046
  baton_start run -c "$CFG" $(mode_set)
  wait_for test -s "$T/up"
  three() { [[ "$(status_get 'd["generations"][0]["processes"]')" == 3 ]]; }
  wait_for three
  run status_get '[d["generations"][0]["cgroup"], type(d["generations"][0]["cpu_usec"]).__name__]'
  if [[ "$MODE" == cgroup ]]; then
    assert_output '[true, "int"]'
    # memory.current only where the memory controller is enabled for baton's cgroups (not on a hybrid layout's
    # unified hierarchy): then it is a number above 0.
    run status_get 'd["generations"][0]["memory_bytes"]'
    if [[ "$output" != null ]]; then ((output > 0)) || fail "memory_bytes $output"; fi
  else
    assert_output '[false, "NoneType"]'
  fi
  run timeout 10 "$BATON" status --control "$CTL"
  assert_success
  assert_output --regexp "generation 1: pid [0-9]+, ready \(current\), up [0-9]+s, 3 processes"
  [[ "$MODE" != cgroup ]] || assert_output --regexp ", cpu [0-9]+\.[0-9]{3}s"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "baton status gives each generation's process count, and its cpu (and memory) with cgroups; cgroups" {
  status_figures cgroup
}
@test "baton status gives each generation's process count; fallback" {
  status_figures never
}

@test "an exec probe runs in a cgroup of its own, beside its generation's, the same one for each run" {
  # Ready at its third run: the second and third run in the cgroup the first one created.
  CFG_PROGRAM="  cgroup: required" \
    CFG_READINESS="{type: exec, command: [/bin/sh, -c, \"grep ^0:: /proc/self/cgroup >>$T/probe.cg; [ \$(wc -l <$T/probe.cg) -ge 3 ]\"], interval: 50ms, timeout: 10s}" \
    write_config /bin/sh -c "cat /proc/self/cgroup >$T/program.cg; exec sleep 1000"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  run grep -c -E '^0::/.*/gen-1-probe$' "$T/probe.cg"
  assert_output 3
  run wc -l <"$T/probe.cg"
  assert_output 3
  run grep -E '^0::/.*/gen-1$' "$T/program.cg"
  assert_success
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

baton_cgroup() { sed -n 's/^0:://p' "/proc/$BATON_PID/cgroup"; }
baton_in_leaf() { [[ "$(baton_cgroup)" == */baton-$BATON_PID/supervisor ]]; }

@test "baton moves itself into a leaf of its own and removes what it created when it exits" {
  CFG_PROGRAM="  cgroup: required" CFG_READINESS="{type: none}" write_config /bin/sleep 1000
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  wait_for baton_in_leaf
  dir="$(cg_dir)/baton-$BATON_PID"
  [[ -d "$dir/gen-1" ]]
  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "$dir" ]] || fail "$dir is left: $(ls "$dir")"
}

@test "the first start moves no process between cgroups: the program is born in gen-1, baton settles once it is ready" {
  # Moving a process (a write to cgroup.procs) waits for an RCU grace period when none ran lately: 10-60 ms at the
  # start (issue 23). The program is created in its cgroup (clone3(CLONE_INTO_CGROUP)); baton moves itself later.
  CFG_PROGRAM="  cgroup: required" CFG_READINESS="{timeout: 10s}" demo_config --ready-delay 1500
  baton_start run -c "$CFG"
  wait_log "generation 1 started"
  child=$(logged_pid 1)
  run sed -n 's/^0:://p' "/proc/$child/cgroup"
  assert_output --regexp "/baton-$BATON_PID/gen-1$"
  # Still starting: baton has not moved.
  run baton_in_leaf
  assert_failure
  wait_log "generation 1 is ready"
  wait_for baton_in_leaf
  # A reload's generation (baton settled by then) lands in its cgroup too.
  run timeout 30 "$BATON" reload -c "$CFG"
  assert_success
  run sed -n 's/^0:://p' "/proc/$(logged_pid 2)/cgroup"
  assert_output --regexp "/baton-$BATON_PID/gen-2$"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

# Runs the batons this test starts in a cgroup of the test's own (SCOPE), below this shell's: a baton sweeps what
# stale batons left beside it, and another test file's baton, started in parallel in the shell's cgroup, would
# sweep this test's leftovers before the test looks at them (it did so once in CI). A sleep shares SCOPE, as the
# shell shares its cgroup: baton makes a baton-PID child only in a cgroup it does not have to itself.
own_cgroup_batons() {
  SCOPE="$(cg_dir)/bats-test-$$-$BATS_TEST_NUMBER"
  mkdir "$SCOPE"
  sh -c 'echo $$ >"$1/cgroup.procs" && exec sleep 1000' sh "$SCOPE" &
  SCOPE_SLEEP=$!
  track_pid "$SCOPE_SLEEP"
  wait_for grep -qx "$SCOPE_SLEEP" "$SCOPE/cgroup.procs"
  printf '#!/bin/sh\necho $$ >"%s/cgroup.procs" || exit 99\nexec "%s" "$@"\n' "$SCOPE" "$BATON" >"$T/baton-in-scope"
  chmod +x "$T/baton-in-scope"
  BATON=$T/baton-in-scope
}

@test "what a baton killed with SIGKILL left of its cgroups is removed by the next baton started beside it" {
  own_cgroup_batons
  CFG_PROGRAM="  cgroup: required" CFG_READINESS="{type: none}" write_config /bin/sleep 1000
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  old=$BATON_PID
  child=$(logged_pid 1)
  dir="$SCOPE/baton-$old"
  [[ -d "$dir/gen-1" ]]
  kill -KILL "$old"
  baton_wait_exit
  # The program got its parent-death signal (stop.signal) and is gone; the empty cgroups stay behind. Gone means
  # reaped too: a zombie (waiting for the init it was reparented to) still populates its cgroup, which then cannot
  # be removed.
  wait_gone "$child"
  wait_for grep -qx "populated 0" "$dir/gen-1/cgroup.events"
  [[ -d "$dir/supervisor" ]] || fail "$dir/supervisor is gone already"
  run "$BATON" run --set program.cgroup=required --set restart.policy=never -- /bin/true
  assert_success
  [[ ! -e "$dir" ]] || fail "$dir is left: $(ls "$dir")"
  kill "$SCOPE_SLEEP"
  wait "$SCOPE_SLEEP" || true
  rmdir "$SCOPE"
}

@test "a baton still starting keeps its cgroups when a baton in another pid namespace starts beside it" {
  # Until its first generation is ready, baton's leaf is empty (it moves in then: cgroup_tree_settle). A baton in a
  # pid namespace of its own (a container sharing this cgroup) cannot see this baton's PID: only the lock baton holds
  # on its directory tells its sweep that this is no leftover.
  CFG_PROGRAM="  cgroup: required" CFG_READINESS="{timeout: 20s}" demo_config --ready-delay 4000
  baton_start run -c "$CFG"
  wait_log "generation 1 started"
  dir="$(cg_dir)/baton-$BATON_PID"
  [[ -d "$dir/supervisor" ]]
  run unshare --pid --fork "$BATON" run --set program.cgroup=required -- /bin/true
  assert_success
  [[ -d "$dir/supervisor" ]] || fail "the other baton removed $dir/supervisor"
  wait_log "generation 1 is ready"
  wait_for baton_in_leaf
  run log_has "Failed to move baton"
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "$dir" ]] || fail "$dir is left: $(ls "$dir")"
}

@test "program.cgroup required where none can be had: exit 111, naming the reason; auto falls back with one line" {
  # BATON_CGROUP_ROOT (for tests only) points baton at a hierarchy that is not there.
  CFG_PROGRAM="  cgroup: required" CFG_READINESS="{type: none}" CFG_EXTRA="restart: {policy: never}" write_config /bin/true
  BATON_CGROUP_ROOT=$T/nothing run --separate-stderr "$BATON" run -c "$CFG"
  assert_equal "$status" 111
  stderr_has "program.cgroup is required, but BATON_CGROUP_ROOT=$T/nothing is not a cgroup2 mount"
  # No cgroup2 mounted at all (a mount namespace hides it): the same, with that reason.
  run --separate-stderr unshare --mount sh -c 'mount -t tmpfs none /sys/fs/cgroup && exec "$0" run -c "$1"' \
    "$BATON" "$CFG"
  assert_equal "$status" 111
  stderr_has "program.cgroup is required, but no cgroup2 hierarchy is mounted"
  # auto: one info line, and the program runs.
  CFG_PROGRAM="  cgroup: auto" CFG_READINESS="{type: none}" CFG_EXTRA="restart: {policy: never}" write_config /bin/true
  BATON_CGROUP_ROOT=$T/nothing run --separate-stderr "$BATON" run -c "$CFG"
  assert_equal "$status" 0
  stderr_has "baton: info: no cgroup per generation (BATON_CGROUP_ROOT=$T/nothing is not a cgroup2 mount)"
  [[ "$(grep -c cgroup <<<"$stderr")" == 1 ]] || fail "more than one line about cgroups: $stderr"
  # --set program.cgroup=never: no cgroup, no line about it.
  run --separate-stderr "$BATON" run --set program.cgroup=never -- /bin/true
  assert_equal "$status" 0
  [[ "$stderr" != *cgroup* ]] || fail "stderr: $stderr"
}
