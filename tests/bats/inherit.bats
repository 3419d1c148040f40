#!/usr/bin/env bats
# Inherited sockets (baton(1) INHERITED SOCKETS; baton.yaml(5) LISTENERS): baton started with LISTEN_FDS (here by
# systemd-socket-activate, which binds the sockets and execs baton in its place on the first connection) takes them
# over: by name first, then by address; inherit: required / never; leftovers closed with a warning; an inherited
# unix socket file is never removed; the child sees only its own LISTEN_* variables.

load 'helpers'

setup() {
  PORT=$(free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  REPORT="$BATS_TEST_TMPDIR/report"
  export PROBE_OUT="$REPORT"
}
teardown() { teardown_processes; }

# The address of fd N in the probe's report ("127.0.0.1:8080", "/path").
fd_addr() { report_get "$REPORT" "fd.$1" | sed -n 's/.* addr=\([^ ]*\) .*/\1/p'; }

@test "an inherited TCP socket reaches the child at fd 3: the very socket, and baton binds nothing itself" {
  export PROBE_ECHO=1
  baton_start_activated -l "127.0.0.1:$PORT" --fdname=http -- \
    run --listen "http=tcp://127.0.0.1:$PORT" -- "$PROBE"
  # This client's connection is what makes systemd-socket-activate start baton: it waits in the inherited socket's
  # backlog, and the probe answers it.
  bg_run client "$PYTHON" -c '
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8) as s:
    print(s.makefile().readline().strip())' "$PORT"
  wait_for report_ready "$REPORT"
  wait_for bg_done client
  assert_equal "$(bg_rc client)" 0
  assert_equal "$(bg_out client)" "probe $(report_get "$REPORT" pid)"

  run report_get "$REPORT" fd.3
  assert_output "socket family=inet type=stream listening=1 addr=127.0.0.1:$PORT cloexec=0"
  assert_equal "$(report_get "$REPORT" fds)" "0 1 2 3"
  assert_equal "$(report_get "$REPORT" env.LISTEN_FDS)" 1
  assert_equal "$(report_get "$REPORT" env.LISTEN_FDNAMES)" http
  # systemd-socket-activate exec'd baton: the probe's parent is the process it started.
  assert_equal "$(report_get "$REPORT" ppid)" "$BATON_PID"
  # The port was already bound: had baton bound it again, it would have failed with EADDRINUSE and exited 111.
  run grep -iE 'bind|in use' "$BATON_LOG"
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "inherited sockets are matched by name, whatever the order of the config's listeners" {
  port2=$(free_port)
  # fd 3 is admin ($PORT), fd 4 is http ($port2); the config lists http first.
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$port2\"}
  - {name: admin, address: \"tcp://127.0.0.1:$PORT\"}" program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$PORT" -l "127.0.0.1:$port2" --fdname=admin:http -- run -c "$CFG"
  activate_tcp "$PORT"
  wait_for report_ready "$REPORT"

  assert_equal "$(fd_addr 3)" "127.0.0.1:$port2"
  assert_equal "$(fd_addr 4)" "127.0.0.1:$PORT"
  assert_equal "$(report_get "$REPORT" env.LISTEN_FDNAMES)" "http:admin"
  assert_equal "$(report_get "$REPORT" fds)" "0 1 2 3 4"
  run grep -E 'warning|error' "$BATON_LOG"
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "the name decides over the address: a named socket bound elsewhere is used, with a warning" {
  port2=$(free_port)
  # The names say http is $port2 and admin is $PORT; the config's addresses say the opposite.
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: admin, address: \"tcp://127.0.0.1:$port2\"}" program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$PORT" -l "127.0.0.1:$port2" --fdname=admin:http -- run -c "$CFG"
  activate_tcp "$PORT"
  wait_for report_ready "$REPORT"

  assert_equal "$(fd_addr 3)" "127.0.0.1:$port2"
  assert_equal "$(fd_addr 4)" "127.0.0.1:$PORT"
  log_has "warning: listener 'http': inherited socket 'http' \(fd 4\) is not bound to .*:$PORT, using it anyway"
  log_has "warning: listener 'admin': inherited socket 'admin' \(fd 3\) is not bound to .*:$port2, using it anyway"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "inherited sockets whose names match no listener are matched by address" {
  port2=$(free_port)
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$port2\"}
  - {name: admin, address: \"tcp://127.0.0.1:$PORT\"}" program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$PORT" -l "127.0.0.1:$port2" --fdname=foo:bar -- run -c "$CFG"
  activate_tcp "$PORT"
  wait_for report_ready "$REPORT"

  assert_equal "$(fd_addr 3)" "127.0.0.1:$port2"
  assert_equal "$(fd_addr 4)" "127.0.0.1:$PORT"
  assert_equal "$(report_get "$REPORT" env.LISTEN_FDNAMES)" "http:admin"
  # Both were claimed (none closed as a leftover) and nothing was bound anew (that would have failed: in use).
  run grep -E 'warning|error' "$BATON_LOG"
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "inherit: required without any inherited socket: exit 111 naming the listener, no child" {
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\", inherit: required}" program_config "$PROBE"
  baton_start run -c "$CFG"

  baton_wait_exit
  assert_equal "$BATON_STATUS" 111
  log_has "listener 'http': inherit is required"
  run log_has 'generation 1 started'
  assert_failure
  [[ ! -e "$REPORT" ]]
  run port_listening "$PORT"
  assert_failure
}

@test "inherit: required when the inherited sockets do not match: exit 111 naming the listener and what it got" {
  port2=$(free_port)
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\", inherit: required}" program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$port2" --fdname=other -- run -c "$CFG"
  activate_tcp "$port2"

  baton_wait_exit
  assert_equal "$BATON_STATUS" 111
  log_has "listener 'http': inherit is required.*other"
  [[ ! -e "$REPORT" ]]
}

@test "inherit: never: baton binds the listener itself and closes the inherited socket with a warning" {
  port2=$(free_port)
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$port2\", inherit: never}" program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$PORT" --fdname=http -- run -c "$CFG"
  activate_tcp "$PORT"
  wait_for report_ready "$REPORT"

  assert_equal "$(fd_addr 3)" "127.0.0.1:$port2"
  assert_equal "$(report_get "$REPORT" fds)" "0 1 2 3"
  log_has "warning: inherited socket fd 3 \(name 'http'\) matches no listener, closing it"
  # Nobody holds the inherited socket any more.
  run port_listening "$PORT"
  assert_failure
  port_listening "$port2"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "an inherited socket that no listener claims is closed with a warning naming it" {
  port2=$(free_port)
  program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$PORT" -l "127.0.0.1:$port2" --fdname=http:extra -- run -c "$CFG"
  activate_tcp "$PORT"
  wait_for report_ready "$REPORT"

  log_has "warning: inherited socket fd 4 \(name 'extra'\) matches no listener, closing it"
  assert_equal "$(report_get "$REPORT" fds)" "0 1 2 3"
  assert_equal "$(fd_addr 3)" "127.0.0.1:$PORT"
  run port_listening "$port2"
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "an inherited unix socket file is not removed when baton exits; one that baton bound itself is" {
  inherited="$BATS_TEST_TMPDIR/inherited.sock"
  own="$BATS_TEST_TMPDIR/own.sock"
  CFG_LISTENERS="  - {name: api, address: \"unix:$inherited\"}
  - {name: own, address: \"unix:$own\"}" program_config "$PROBE"
  baton_start_activated -l "$inherited" --fdname=api -- run -c "$CFG"
  activate_unix "$inherited"
  wait_for report_ready "$REPORT"

  assert_equal "$(fd_addr 3)" "$inherited"
  assert_equal "$(fd_addr 4)" "$own"
  [[ -S "$inherited" && -S "$own" ]]
  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ -S "$inherited" ]]
  [[ ! -e "$own" ]]
}

@test "baton's own LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES do not leak into the child" {
  port2=$(free_port)
  # One socket inherited, one bound by baton: the child must see two, with its own pid.
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: admin, address: \"tcp://127.0.0.1:$port2\"}" program_config "$PROBE"
  baton_start_activated -l "127.0.0.1:$PORT" --fdname=http -- run -c "$CFG"
  activate_tcp "$PORT"
  wait_for report_ready "$REPORT"

  pid=$(report_get "$REPORT" pid)
  assert_equal "$(report_get "$REPORT" env.LISTEN_PID)" "$pid"
  [[ "$pid" != "$BATON_PID" ]]
  assert_equal "$(report_get "$REPORT" env.LISTEN_FDS)" 2
  assert_equal "$(report_get "$REPORT" env.LISTEN_FDNAMES)" "http:admin"
  assert_equal "$(report_get "$REPORT" env.LISTEN_PIDFDID)" "(unset)"
  assert_equal "$(report_get "$REPORT" sd_listen_fds)" 2
  assert_equal "$(fd_addr 3)" "127.0.0.1:$PORT"
  assert_equal "$(fd_addr 4)" "127.0.0.1:$port2"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}
