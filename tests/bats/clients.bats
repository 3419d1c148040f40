#!/usr/bin/env bats
# Programs written for systemd run under baton as under systemd, unchanged and under the default config (no notify
# key: NOTIFY_SOCKET is a socket file, as systemd's): the real client libraries from Debian's packages (go-systemd,
# python3-systemd, systemd-notify, libsystemd from C) and a gone-style Go daemon of the tests' own
# (tests/programs/gone-style: a notify that knows only paths, self-replacement by fork+exec with MAINPID=, in-process
# reload on SIGHUP). Each: its sockets by name (two listeners, "admin" first: the program must pick "http" by its
# name), its readiness, and reloads under a client loop (a new connection per request) with no failed request. The
# figures (requests, failures) go to the TAP output as comments.

load 'helpers'

# The Go programs are compiled once per run, offline: GOPATH mode against Debian's go-systemd in /usr/share/gocode,
# the build cache beside the build (so a second run compiles nothing).
setup_file() {
  export GO_BIN="$BATS_FILE_TMPDIR/bin"
  mkdir -p "$GO_BIN"
  local p
  for p in gosd-server gone-style; do
    (cd "$TESTS_DIR/programs" && GOCACHE="$(dirname "$BATON")/go-cache" GO111MODULE=off GOPATH=/usr/share/gocode \
      GOFLAGS= GOPROXY=off go build -o "$GO_BIN/$p" "./$p") || return 1
  done
}

setup() {
  demo_setup
  ADMIN_PORT=$(free_port)
  CFG_LISTENERS="  - {name: admin, address: \"tcp://127.0.0.1:$ADMIN_PORT\"}
  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}"
}
teardown() { teardown_processes; }

answer() { curl -fsS --max-time 5 "http://127.0.0.1:$PORT/"; }

# The program is up on "http" (not on "admin": it chose by name), and its notify socket was a path.
started() {
  local who=$1
  baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  run answer
  assert_output --regexp "^hello from $who pid=[0-9]+ generation=1"
  [[ -S "/run/baton/notify-$BATON_PID.sock" ]] || ((EUID != 0))
}

# N reloads (`baton reload`, each synchronous) under a client loop; then the figures, and no failed request.
reloads_under_load() {
  local who=$1 n=$2 i
  client_loop_start load "$PORT"
  wait_for client_loop_saw load 1
  for ((i = 1; i <= n; i++)); do
    run timeout 60 "$BATON" reload --control "$CTL"
    assert_success
  done
  wait_for client_loop_saw load "${3:-$((n + 1))}"
  client_loop_stop load
  echo "# $who: $n reloads under a client loop: $(client_loop_count load ok) requests, $(client_loop_count load fail) failed" >&3
  assert_equal "$(client_loop_count load fail)" 0
}

stopped() {
  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "/run/baton/notify-$BATON_PID.sock" ]]
}

@test "go-systemd: activation.ListenersWithNames, daemon.SdNotify; 3 reloads under a client loop lose no request" {
  write_config "$GO_BIN/gosd-server" http
  started gosd-server
  reloads_under_load go-systemd 3
  stopped
}

@test "go-systemd: daemon.SdWatchdogEnabled sees program.watchdog; its pings keep it, and without them it is restarted" {
  CFG_PROGRAM="  watchdog: 1s
  environment: {GOSD_NO_PING: $BATS_TEST_TMPDIR/no-ping}" write_config "$GO_BIN/gosd-server" http
  started gosd-server
  log_has 'gosd-server: watchdog every 1s'
  # Pinging at half the interval, it outlives several intervals.
  wait_for eval '(( $(status_get "d[\"generations\"][0][\"uptime_ms\"]") > 3500 ))'
  assert_equal "$(status_get 'd["generations"][0]["generation"]')" 1
  touch "$BATS_TEST_TMPDIR/no-ping"
  wait_log 'generation 1 \(pid [0-9]+\) missed its watchdog'
  rm "$BATS_TEST_TMPDIR/no-ping"
  wait_log 'generation 2 is ready'
  stopped
}

@test "python3-systemd: listen_fds_with_names, notify; 3 reloads under a client loop lose no request" {
  write_config "$PYTHON" "$TESTS_DIR/programs/pysd-server.py" http
  started pysd-server
  reloads_under_load python3-systemd 3
  stopped
}

@test "systemd-notify --ready from a shell script (sockets by LISTEN_FDNAMES); 3 reloads under a client loop lose no request" {
  cat >"$BATS_TEST_TMPDIR/svc.sh" <<SH
[ "\$LISTEN_FDNAMES" = admin:http ] || { echo "LISTEN_FDNAMES=\$LISTEN_FDNAMES" >&2; exit 2; }
systemd-notify --ready || exit 3
exec "$BATON_DEMO" --no-notify
SH
  write_config /bin/sh "$BATS_TEST_TMPDIR/svc.sh"
  baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  wait_for generation_answers "$PORT" 1
  reloads_under_load systemd-notify 3
  stopped
}

@test "libsystemd from C: sd_listen_fds_with_names, FDSTORE=1 relayed, sd_notify_barrier returns; 3 reloads lose no request" {
  upstream_start
  CFG_PROGRAM="  fd-store: true" write_config "$SD_CLIENT" http
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  run answer
  assert_output --regexp "^hello from sd-client pid=[0-9]+ generation=1 barrier=[0-9]+"
  # The program's FDSTORE=1 reached systemd (here the stand-in) with its name; the barrier came back before READY=1.
  wait_upstream 'FDSTORE=1'
  upstream_has 'FDNAME=state'
  reloads_under_load sd-client 3
  stopped
}

# ---- gone-style: what One-com's gone/daemon does ----

gone_start() {
  write_config "$GO_BIN/gone-style" http
  started gone-style
}
gone_answer_field() { answer | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }

@test "gone-style: ready on the default (path) notify socket; with notify.socket: abstract its sd_notify cannot reach baton (Go before 1.22)" {
  gone_start
  stopped

  CFG_EXTRA="notify: {socket: abstract}" CFG_READINESS="{timeout: 2s}" write_config "$GO_BIN/gone-style" http
  # Go before 1.22 counts a trailing NUL in a unix address that starts with one (golang/go#63579): gone's path-only
  # sd_notify misses the abstract socket (Debian 12's Go 1.19). Go 1.22 stopped that, and it reaches baton (Debian
  # 13's Go 1.24): the default path socket works with either.
  local minor
  minor=$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
  [[ -n $minor ]] || fail "cannot read Go's version: $(go env GOVERSION)"
  if ((minor >= 22)); then
    baton_start run -c "$CFG"
    wait_log 'generation 1 is ready'
    run answer
    assert_output --regexp "^hello from gone-style pid=[0-9]+ generation=1"
    baton_stop
    assert_equal "$BATON_STATUS" 0
    return
  fi
  baton_start run -c "$CFG"
  baton_wait_exit
  # Its sd_notify fails (the address it computes is not baton's), and it gives up: the start fails.
  # (The address it printed holds the NUL byte it made: grep -a.)
  grep -qa 'gone-style: sd_notify: dial unixgram .*: connect: connection refused' "$BATON_LOG"
  log_has 'generation 1 \(pid [0-9]+\) exited with status 3 before it was ready'
  assert_equal "$BATON_STATUS" 3
}

@test "gone-style: self-replacement on SIGUSR2 (fork+exec, READY=1 + MAINPID=, SIGTERM to the parent) under a client loop loses no request" {
  gone_start
  client_loop_start load "$PORT"
  wait_for client_loop_saw load 1
  pid1=$(gone_answer_field pid)
  for copy in 2 3 4; do
    kill -USR2 "$BATON_PID"
    wait_for eval '[[ "$(gone_answer_field copy)" == '$copy' ]]'
    pid=$(gone_answer_field pid)
    wait_log "generation 1: its main process is now pid $pid"
    wait_for eval '[[ "$(status_get "d[\"generations\"][0][\"pid\"]")" == '$pid' ]]'
  done
  n=$(client_loop_count load ok)
  wait_for eval '(( $(client_loop_count load ok) > n + 10 ))'
  client_loop_stop load
  echo "# gone-style: 3 self-replacements under a client loop: $(client_loop_count load ok) requests, $(client_loop_count load fail) failed" >&3
  assert_equal "$(client_loop_count load fail)" 0
  wait_gone "$pid1"
  # Still generation 1, never restarted, and nothing of the old copies is left.
  assert_equal "$(status_get 'd["generations"][0]["generation"]')" 1
  run log_has 'restarting in|generation 1 \(pid [0-9]+\) exited'
  assert_failure
  assert_equal "$(status_get 'd["generations"][0]["processes"]')" 1
  stopped
}

@test "gone-style: after a self-replacement, a signal reload (RELOADING=1, READY=1), a replace reload, a crash restart, an upgrade and a stop behave" {
  # config-examples/go-service.yaml, with the test's program, ports and control socket (no user, no watchdog: the
  # gone-style program does not ping).
  sed -e "s#\[/usr/local/bin/go-service, .*\]#[\"$GO_BIN/gone-style\", http]#" -e "s/127\.0\.0\.1:8080/127.0.0.1:$PORT/" \
    -e "s/127\.0\.0\.1:8081/127.0.0.1:$ADMIN_PORT/" -e '/^  user: /d' -e '/^  watchdog: /d' \
    "$TESTS_DIR/../config-examples/go-service.yaml" >"$CFG"
  echo "control: {socket: \"$CTL\"}" >>"$CFG"
  grep -q "gone-style" "$CFG"
  started gone-style
  kill -USR2 "$BATON_PID"
  wait_for eval '[[ "$(gone_answer_field copy)" == 2 ]]'
  pid2=$(gone_answer_field pid)
  wait_log "its main process is now pid $pid2"
  # reload.strategy signal: SIGHUP to the new main process, which says RELOADING=1 then READY=1.
  client_loop_start load "$PORT"
  wait_for client_loop_saw load 1
  for i in 1 2 3; do
    run timeout 60 "$BATON" reload --control "$CTL"
    assert_success
  done
  assert_equal "$(gone_answer_field reloads)" 3
  assert_equal "$(gone_answer_field pid)" "$pid2"
  log_has "generation 1 \(pid $pid2\) is reloading"
  # A replace reload (the config changed): generation 2 takes over from the replaced copy.
  CFG_EXTRA="" write_config "$GO_BIN/gone-style" http
  run timeout 60 "$BATON" reload --control "$CTL"
  assert_success
  wait_for client_loop_saw load 2
  client_loop_stop load
  echo "# gone-style: 3 signal reloads and 1 replace reload after a self-replacement: $(client_loop_count load ok) requests, $(client_loop_count load fail) failed" >&3
  assert_equal "$(client_loop_count load fail)" 0
  wait_gone "$pid2"
  # Self-replacement in generation 2, then a crash of the copy: restarted as generation 3.
  kill -USR2 "$BATON_PID"
  wait_for eval '[[ "$(gone_answer_field copy)" == 2 ]]'
  pid=$(gone_answer_field pid)
  wait_log "generation 2: its main process is now pid $pid"
  kill -KILL "$pid"
  wait_log "generation 2 \(pid $pid\) was killed by SIGKILL; restarting in"
  wait_for generation_answers "$PORT" 3
  # A self-replacement, then baton upgrade: the followed main process is carried, and still stops with baton.
  kill -USR2 "$BATON_PID"
  wait_for eval '[[ "$(gone_answer_field copy)" == 2 ]]'
  pid=$(gone_answer_field pid)
  wait_log "generation 3: its main process is now pid $pid"
  run timeout 30 "$BATON" upgrade --control "$CTL"
  assert_success
  assert_equal "$(status_get 'd["generations"][0]["pid"]')" "$pid"
  stopped
  wait_gone "$pid"
}
