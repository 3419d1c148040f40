#!/usr/bin/env bats
# What baton maps (issue 23; baton(1) FILES): libsystemd only when the environment asks for what it does
# (NOTIFY_SOCKET, LISTEN_FDS, WATCHDOG_USEC), libcyaml and libyaml only once a config file is read. Quick use in a
# container maps neither. A library that is needed and cannot be loaded is a clear error at start, naming the variable
# or the file that needs it (for NOTIFY_SOCKET alone, once the program is started: it is stopped at once); one that is
# not needed may be missing. "Missing" is a file that cannot be loaded, mounted
# over the real one in a private mount namespace (unshare -m), so the test needs root.

load 'helpers'

setup() {
  demo_setup
  [[ $(id -u) == 0 ]] || skip "needs root (unshare -m) to hide a library: not run"
}
teardown() { teardown_processes; }

# The path the dynamic linker finds for a soname.
lib_path() { ldconfig -p | awk -v n="$1" '$1 == n && /x86-64|64bit/ { print $NF; exit }'; }
maps_has() { grep -q -- "$2" "/proc/$1/maps"; }

# Runs "$@" with the library of soname $1 replaced by an empty file, in a private mount namespace.
without_lib() {
  local lib
  lib=$(lib_path "$1")
  [[ -n $lib ]] || { echo "no $1 on this system" >&2; return 1; }
  shift
  unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib" "$@"
}

@test "quick use without systemd's variables maps neither libsystemd nor libcyaml" {
  env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u WATCHDOG_USEC \
    "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" --set stop.timeout=2s -- "$BATON_DEMO" >"$BATS_TEST_TMPDIR/log" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_http "$PORT"
  run cat "/proc/$BATON_PID/maps"
  refute_output --partial libsystemd
  refute_output --partial libcyaml
  refute_output --partial libyaml
}

@test "NOTIFY_SOCKET loads libsystemd, and READY=1 goes upstream" {
  upstream_start
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run --listen "http=tcp://127.0.0.1:$PORT" -- "$BATON_DEMO"
  wait_upstream 'READY=1'
  maps_has "$BATON_PID" libsystemd
  run maps_has "$BATON_PID" libcyaml
  assert_failure
}

@test "a config file loads libcyaml (kept for the reloads), and no libsystemd without systemd's variables" {
  demo_config
  env -u NOTIFY_SOCKET "$BATON" run -c "$CFG" >"$BATS_TEST_TMPDIR/log" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_http "$PORT"
  maps_has "$BATON_PID" libcyaml
  maps_has "$BATON_PID" libyaml
  run maps_has "$BATON_PID" libsystemd
  assert_failure
  run timeout 30 "$BATON" reload -c "$CFG"
  assert_success
  maps_has "$BATON_PID" libcyaml
}

@test "NOTIFY_SOCKET without a loadable libsystemd: exit 111 once the program is started, which is stopped, naming the variable" {
  # libsystemd is loaded while the program starts (run.c), so the program may have begun: baton stops it at once.
  local pidfile=$BATS_TEST_TMPDIR/pid notify=$BATS_TEST_TMPDIR/notify.sock ctl=$BATS_TEST_TMPDIR/ctl.sock
  local marker=baton-footprint-$$-$RANDOM
  NOTIFY_SOCKET=/run/nothing-here run --separate-stderr without_lib libsystemd.so.0 \
    "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" --set "notify.socket=$notify" --set "control.socket=$ctl" \
    --set stop.timeout=5s -- sh -c 'echo $$ >"$0"; exec sleep 1000 "$1"' "$pidfile" "$marker"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "baton: error: NOTIFY_SOCKET is set, but libsystemd cannot be loaded: "
  stderr_has "libsystemd.so.0"
  # Said once, as baton's error: no warning for each message that could not go to systemd.
  [[ $stderr != *"Failed to notify systemd"* ]] || fail "a notify warning beside the error"
  # Nothing of the program is left (baton returned only after its generation ended), nor anything baton had set up:
  # no listener, no socket file.
  if [[ -s $pidfile ]]; then
    run kill -0 "$(cat "$pidfile")"
    assert_failure
  fi
  run pgrep -f "$marker"
  assert_failure
  run port_listening "$PORT"
  assert_failure
  [[ ! -e $notify && ! -e $ctl ]] || fail "left behind: $(ls "$BATS_TEST_TMPDIR")"
}

@test "NOTIFY_SOCKET without a loadable libsystemd and a program that cannot start: both said, exit 111" {
  NOTIFY_SOCKET=/run/nothing-here run --separate-stderr without_lib libsystemd.so.0 \
    "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" -- "$BATS_TEST_TMPDIR/no-such-program"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "no-such-program"
  stderr_has "baton: error: NOTIFY_SOCKET is set, but libsystemd cannot be loaded: "
}

@test "WATCHDOG_USEC without a loadable libsystemd: exit 111 before the program starts, naming the variable" {
  local ran=$BATS_TEST_TMPDIR/ran
  WATCHDOG_USEC=10000000 run --separate-stderr without_lib libsystemd.so.0 env -u NOTIFY_SOCKET \
    "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" -- sh -c 'echo ran >"$0"' "$ran"
  assert_equal "$status" 111
  stderr_has "baton: error: WATCHDOG_USEC is set, but libsystemd cannot be loaded: "
  [[ ! -e $ran ]] || fail "the program ran"
}

@test "LISTEN_FDS without a loadable libsystemd: exit 111, naming the variable" {
  LISTEN_FDS=1 LISTEN_PID=1 run --separate-stderr without_lib libsystemd.so.0 \
    env -u NOTIFY_SOCKET "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" -- "$BATON_DEMO"
  assert_equal "$status" 111
  stderr_has "baton: error: LISTEN_FDS is set, but libsystemd cannot be loaded: "
}

@test "quick use needs no libsystemd: it runs its program with the library gone" {
  local lib
  lib=$(lib_path libsystemd.so.0)
  [[ -n $lib ]]
  # The program is sleep: baton-demo itself links libsystemd. unshare and sh exec, so the PID is baton's.
  unshare -m sh -c 'mount --bind /dev/null "$0" && exec "$@"' "$lib" env -u NOTIFY_SOCKET -u LISTEN_FDS \
    -u WATCHDOG_USEC "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" -- sleep 1000 >"$BATS_TEST_TMPDIR/log" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_for port_listening "$PORT"
  wait_for test -n "$(children_of "$BATON_PID")"
  kill -TERM "$BATON_PID"
  baton_wait_exit
  # A requested stop.
  assert_equal "$BATON_STATUS" 0
  run cat "$BATS_TEST_TMPDIR/log"
  refute_output --partial error
}

@test "a config file without a loadable libcyaml: a config error naming the file and the library" {
  demo_config
  run --separate-stderr without_lib libcyaml.so.1 "$BATON" check -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 101
  stderr_has "$CFG: reading a config file needs libcyaml, which cannot be loaded: "
  stderr_has "libcyaml.so.1"
}

@test "quick use and its --set options need no libcyaml" {
  run --separate-stderr without_lib libcyaml.so.1 "$BATON" check --listen "http=tcp://127.0.0.1:$PORT" \
    --set stop.timeout=5s --set program.environment.A=b -- "$BATON_DEMO"
  echo "status $status, stderr: $stderr"
  assert_success
  assert_output --partial "timeout: 5s"
  # --set is checked as strictly without the library.
  run --separate-stderr without_lib libcyaml.so.1 "$BATON" check --listen "http=tcp://127.0.0.1:$PORT" \
    --set stop.timeout=5 -- "$BATON_DEMO"
  assert_equal "$status" 101
  stderr_has "stop.timeout"
}

@test "an upgrade in quick use reads the handed-over config and unloads libcyaml again" {
  : "${BATON_NEXT:?}"
  env -u NOTIFY_SOCKET "$BATON" run --listen "http=tcp://127.0.0.1:$PORT" --set "control.socket=$CTL" \
    -- "$BATON_DEMO" >"$BATS_TEST_TMPDIR/log" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_http "$PORT"
  run timeout 30 "$BATON" upgrade --control "$CTL" --binary "$BATON_NEXT"
  assert_success
  wait_http "$PORT"
  run cat "/proc/$BATON_PID/maps"
  assert_output --partial "$(basename "$BATON_NEXT")"
  refute_output --partial libcyaml
  refute_output --partial libyaml
}
