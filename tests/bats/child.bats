#!/usr/bin/env bats
# What the program gets (baton(1) WHAT THE PROGRAM GETS; baton.yaml(5) PROGRAM): LISTEN_* for its own pid, no stray
# fds, a clean signal state, its own process group, a cleaned environment with baton's NOTIFY_SOCKET, {fd:NAME}, the
# program section's environment, directory and user, stdin from /dev/null; and exec failures reported as such.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() { probe_setup; }
teardown() {
  teardown_processes
  [[ -z "${NOBODY_DIR:-}" ]] || rm -rf "$NOBODY_DIR"
}

TWO_LISTENERS='  - {name: first, address: "unix:@baton-test-'$$'-first"}
  - {name: second, address: "unix:@baton-test-'$$'-second"}'

@test "LISTEN_PID is the child's own pid, and the child is baton's" {
  probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_equal "$(rep env.LISTEN_PID)" "$(rep pid)"
  assert_equal "$(rep ppid)" "$BATON_PID"
  assert_equal "$(rep env.LISTEN_FDS)" 2
  assert_equal "$(rep env.LISTEN_FDNAMES)" "first:second"
  # sd_listen_fds() accepts them (it checks LISTEN_PID against getpid()).
  assert_equal "$(rep sd_listen_fds)" 2
}

@test "no stray fds: exactly 0 1 2 and the listeners, even when baton inherited others" {
  probe_config "$TWO_LISTENERS"
  # baton itself starts with extra fds open (bats has some too): none may reach the child.
  probe_start run -c "$CFG" 7</etc/passwd 8>"$BATS_TEST_TMPDIR/out" 9</dev/null
  assert_equal "$(rep fds)" "0 1 2 3 4"
}

@test "the listener fds are not close-on-exec in the child" {
  probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_regex "$(rep fd.3)" " cloexec=0\$"
  assert_regex "$(rep fd.4)" " cloexec=0\$"
}

# Runs "$@" with SIGUSR1 blocked and SIGUSR2 ignored, as a careless parent shell or service manager might leave them.
SIGNAL_LAUNCHER='import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])'

@test "the child gets an empty signal mask and no ignored signals, even when baton's parent left some" {
  # The launcher works: a program started by it directly has SIGUSR1 (bit 10) blocked and SIGUSR2 (bit 12) ignored.
  PROBE_OUT="$BATS_TEST_TMPDIR/direct" PROBE_NOTIFY=none PROBE_EXIT=0 "$PYTHON" -c "$SIGNAL_LAUNCHER" "$PROBE"
  local mask ign
  mask=$(report_get "$BATS_TEST_TMPDIR/direct" sigmask)
  ign=$(report_get "$BATS_TEST_TMPDIR/direct" sigign)
  (((0x$mask & 0x200) != 0))
  (((0x$ign & 0x800) != 0))

  probe_config "  - {name: web, address: \"tcp://127.0.0.1:$PORT\"}"
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  "$PYTHON" -c "$SIGNAL_LAUNCHER" "$BATON" run -c "$CFG" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_report
  assert_equal "$(rep ppid)" "$BATON_PID"
  assert_equal "$(rep sigmask)" 0000000000000000
  assert_equal "$(rep sigign)" 0000000000000000
}

@test "the child leads its own process group, not baton's" {
  probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_equal "$(rep pgid)" "$(rep pid)"
  local baton_pgid
  baton_pgid=$(ps -o pgid= -p "$BATON_PID" | tr -d ' ')
  [[ -n "$baton_pgid" && "$(rep pgid)" != "$baton_pgid" ]]
}

@test "LISTEN_PIDFDID, WATCHDOG_PID and WATCHDOG_USEC from baton's environment do not reach the child" {
  probe_config "$TWO_LISTENERS"
  export LISTEN_PIDFDID=12345 WATCHDOG_PID=$$ WATCHDOG_USEC=30000000 PROBE_ENV=KEPT_VARIABLE KEPT_VARIABLE=kept
  probe_start run -c "$CFG"
  assert_equal "$(rep env.LISTEN_PIDFDID)" "(unset)"
  assert_equal "$(rep env.WATCHDOG_PID)" "(unset)"
  assert_equal "$(rep env.WATCHDOG_USEC)" "(unset)"
  # The rest of the environment is passed on.
  assert_equal "$(rep env.KEPT_VARIABLE)" kept
}

@test "the child's NOTIFY_SOCKET is baton's own, not the one baton was given" {
  probe_config "$TWO_LISTENERS"
  export NOTIFY_SOCKET="@baton-test-$$-upstream"
  probe_start run -c "$CFG"
  local ns
  ns=$(rep env.NOTIFY_SOCKET)
  # A socket file of baton's own, named after its PID (baton.yaml(5) notify.socket auto).
  [[ "$ns" == /*"/notify-$BATON_PID.sock" ]] || fail "NOTIFY_SOCKET=$ns"
  # And the child's READY=1 arrives there: baton reports the generation ready.
  wait_log "generation 1 is ready"
}

@test "BATON_GENERATION is 1 for the first child, whatever baton's environment says" {
  probe_config "$TWO_LISTENERS"
  export BATON_GENERATION=7
  probe_start run -c "$CFG"
  assert_equal "$(rep env.BATON_GENERATION)" 1
}

@test "{fd:NAME} in the command is replaced by the listener's fd" {
  probe_config "$TWO_LISTENERS" --fd "{fd:second}" "--first={fd:first}" "{fd:first}{fd:second}"
  probe_start run -c "$CFG"
  assert_equal "$(rep argv)" 5
  assert_equal "$(rep argv1)" --fd
  assert_equal "$(rep argv2)" 4
  assert_equal "$(rep argv3)" --first=3
  assert_equal "$(rep argv4)" 34
}

@test "{fd:NAME} works with --listen and -- COMMAND too" {
  probe_start run -l "a=unix:@baton-test-$$-a" -l "b=unix:@baton-test-$$-b" -- "$PROBE" --fd "{fd:b}"
  assert_equal "$(rep argv1)" --fd
  assert_equal "$(rep argv2)" 4
}

@test "program.environment is passed and overrides the inherited value" {
  export PROBE_OVERRIDDEN=inherited PROBE_INHERITED=inherited
  PROGRAM_EXTRA='  environment:
    PROBE_ENV: "PROBE_ADDED,PROBE_OVERRIDDEN,PROBE_INHERITED"
    PROBE_ADDED: "from config"
    PROBE_OVERRIDDEN: overridden' probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_equal "$(rep env.PROBE_ADDED)" "from config"
  assert_equal "$(rep env.PROBE_OVERRIDDEN)" overridden
  assert_equal "$(rep env.PROBE_INHERITED)" inherited
}

@test "program.environment cannot override the variables baton sets itself" {
  PROGRAM_EXTRA='  environment:
    LISTEN_FDS: "99"
    LISTEN_FDNAMES: bogus
    BATON_GENERATION: "42"' probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_equal "$(rep env.LISTEN_FDS)" 2
  assert_equal "$(rep env.LISTEN_FDNAMES)" "first:second"
  assert_equal "$(rep env.BATON_GENERATION)" 1
}

@test "program.working-directory is the child's cwd" {
  mkdir "$BATS_TEST_TMPDIR/work dir"
  PROGRAM_EXTRA="  working-directory: \"$BATS_TEST_TMPDIR/work dir\"" probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_equal "$(rep cwd)" "$BATS_TEST_TMPDIR/work dir"
}

@test "program.user: nobody runs the child as nobody, with nobody's groups" {
  [[ "$(id -u)" == 0 ]] || skip "needs root to change user"
  # The report is written by the child as nobody, which cannot enter bats' private temporary directory.
  NOBODY_DIR=$(mktemp -d /tmp/baton-test-nobody.XXXXXX)
  chmod 1777 "$NOBODY_DIR"
  REPORT=$NOBODY_DIR/report
  export PROBE_OUT=$REPORT
  public_bins PROBE
  PROGRAM_EXTRA='  user: nobody' probe_config "$TWO_LISTENERS"
  probe_start run -c "$CFG"
  assert_equal "$(rep uid)" "$(id -u nobody)"
  assert_equal "$(rep uid)" 65534
  assert_equal "$(rep gid)" "$(id -g nobody)"
  # initgroups(3): nobody's supplementary groups, not root's.
  assert_equal "$(rep groups)" "$(id -G nobody)"
  # The sockets were bound before the privileges were dropped, and still arrive.
  assert_equal "$(rep env.LISTEN_FDS)" 2
}

# Starts baton -c $CFG with $BATS_TEST_TMPDIR/input as its stdin. Not baton_start: bash gives a background command
# /dev/null as stdin unless the command itself redirects it, and baton must get a real file here.
start_with_input() {
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  "$BATON" run -c "$CFG" <"$BATS_TEST_TMPDIR/input" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
}

@test "the child's stdin is baton's own by default (a file, a pipe)" {
  probe_config "$TWO_LISTENERS"
  echo "for the child" >"$BATS_TEST_TMPDIR/input"
  start_with_input
  wait_report
  assert_equal "$(readlink "/proc/$BATON_PID/fd/0")" "$BATS_TEST_TMPDIR/input"
  assert_equal "$(rep stdin)" "$BATS_TEST_TMPDIR/input"
}

@test "program.stdin: /dev/null gives the child /dev/null instead of baton's stdin" {
  PROGRAM_EXTRA='  stdin: /dev/null' probe_config "$TWO_LISTENERS"
  echo "not for the child" >"$BATS_TEST_TMPDIR/input"
  start_with_input
  wait_report
  assert_equal "$(rep stdin)" /dev/null
  # The same through --set, without a file.
  run --separate-stderr bash -c 'echo hi | timeout 20 "$0" run --set program.stdin=/dev/null -- cat' "$BATON"
  assert_success
  assert_output ""
}

@test "a pipe into baton reaches the program: echo hi | baton run -- cat" {
  run --separate-stderr bash -c 'echo hi | timeout 20 "$0" run -- cat' "$BATON"
  assert_equal "$status" 0
  assert_equal "$output" hi
}

@test "exec of a missing binary exits 102 with the exec error, not status 127" {
  run --separate-stderr timeout 10 "$BATON" run -- /nonexistent
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 102
  stderr_has "exec /nonexistent: No such file or directory"
  [[ "$stderr" != *127* ]]
}

@test "exec of a non-executable file exits 102 with Permission denied" {
  local prog=$BATS_TEST_TMPDIR/not-executable
  printf '#!/bin/sh\necho ran\n' >"$prog"
  chmod 0644 "$prog"
  run --separate-stderr timeout 10 "$BATON" run -- "$prog"
  echo "status $status, stdout: $output, stderr: $stderr"
  assert_equal "$status" 102
  stderr_has "exec $prog: Permission denied"
  refute_output --partial ran
}

@test "a missing working-directory exits 102 naming chdir and the path" {
  PROGRAM_EXTRA="  working-directory: $BATS_TEST_TMPDIR/missing" probe_config "$TWO_LISTENERS"
  run --separate-stderr timeout 10 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 102
  stderr_has "chdir $BATS_TEST_TMPDIR/missing"
  stderr_has "No such file or directory"
  assert_no_child
}

@test "without listeners the child gets no LISTEN_* variables at all" {
  probe_config ""
  probe_start run -c "$CFG"
  assert_equal "$(rep env.LISTEN_FDS)" "(unset)"
  assert_equal "$(rep env.LISTEN_PID)" "(unset)"
  assert_equal "$(rep env.LISTEN_FDNAMES)" "(unset)"
  assert_equal "$(rep fds)" "0 1 2"
  assert_equal "$(rep sd_listen_fds)" 0
  # It is still supervised: its own notify socket and generation.
  assert_equal "$(rep env.BATON_GENERATION)" 1
  [[ "$(rep env.NOTIFY_SOCKET)" == /*"/notify-$BATON_PID.sock" ]]
}
