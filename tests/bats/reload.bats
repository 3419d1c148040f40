#!/usr/bin/env bats
# Reloads (baton(1) RELOAD; baton.yaml(5) RELOAD): zero-downtime replace under load, each way a reload fails (the old
# generation keeps serving), the hard cases (an old generation that will not stop, HUP bursts, concurrent reloads,
# SIGTERM during a reload), the restart and signal strategies, and listener changes. baton keeps its PID throughout.

load 'helpers'

setup() { demo_setup; }
teardown() { teardown_processes; }

# The baton we started is alive, and it is the one answering on the control socket: its PID did not change.
assert_same_baton() {
  kill -0 "$BATON_PID"
  assert_equal "$(status_get 'd["pid"]')" "$BATON_PID"
}

# baton serves again with one generation, no reload running or queued.
settled() {
  [[ "$(status_get '[d["state"], d["reload_in_progress"], d["reload_queued"], len(d["generations"])]')" == \
    '["running", false, false, 1]' ]] && [[ "$(live_children "$BATON_PID")" == 1 ]]
}

reload_ok() {
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_success
  assert_output --partial "reloaded: generation $1 "
}

# The inode of the socket listening on 127.0.0.1:PORT (from /proc/net/tcp).
listen_inode() {
  awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }' /proc/net/tcp
}
baton_holds_socket() {
  local fd
  for fd in "/proc/$BATON_PID/fd/"*; do
    [[ "$(readlink "$fd")" == "socket:[$1]" ]] && return 0
  done
  return 1
}

# ---- replace under load ----

@test "10 reloads back to back under a continuous client loop: no failed connection, same baton pid" {
  demo_config
  start_baton
  client_loop_start load "$PORT"

  for gen in $(seq 2 11); do
    reload_ok "$gen"
  done
  # The client ran from before the first reload until after the last one.
  wait_for client_loop_saw load 11
  client_loop_stop load

  run grep '^fail' "$BATS_TEST_TMPDIR/load.log"
  assert_output ""
  (($(client_loop_count load ok) >= 20))
  assert_equal "$(answer_generation "$PORT")" 11
  assert_same_baton
  assert_equal "$(ps -o ppid= -p "$(answer_pid "$PORT")" | tr -d ' ')" "$BATON_PID"
  wait_for settled
}

# ---- failed reloads: the old generation keeps serving ----

@test "reload with an invalid config (port 0) fails with the key; the old generation keeps serving" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  CFG_LISTENERS='  - {name: http, address: "tcp://127.0.0.1:0"}' demo_config
  # By --control here; -c FILE with FILE broken is the next test.
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "invalid configuration"
  assert_output --partial "listeners[0].address"
  assert_output --partial "generation 1 keeps serving"
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  assert_equal "$(live_children "$BATON_PID")" 1
  run log_has "generation 2 started"
  assert_failure

  # A YAML syntax error, the same way.
  printf 'listeners: [\n' >"$CFG"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "invalid configuration"
  assert_output --partial "YAML syntax error"
  assert_equal "$(answer_pid "$PORT")" "$pid1"

  demo_config
  reload_ok 2
  [[ "$(answer_pid "$PORT")" != "$pid1" ]]
  assert_same_baton
}

@test "reload -c FILE with an invalid FILE that sets control.socket still reaches baton and exits 1 with the reason" {
  # baton(1): "With -c FILE, the control commands find the control socket the way run -c FILE chose it", and
  # reload "exits 1 and prints why (the configuration is invalid, ...)": ExecReload= after a typo in the file.
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  CFG_LISTENERS='  - {name: http, address: "tcp://127.0.0.1:0"}' demo_config
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial "invalid configuration"
  assert_output --partial "listeners[0].address"
  assert_equal "$(answer_pid "$PORT")" "$pid1"
}

@test "reload whose new generation exits early fails with its status; the old generation keeps serving" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  demo_config --fail-start 3
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial "exited with status 3 before it was ready"
  assert_output --partial "generation 1 keeps serving"
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  wait_for settled

  demo_config
  reload_ok 3
  [[ "$(answer_pid "$PORT")" != "$pid1" ]]
  assert_same_baton
}

@test "reload whose new generation is not ready within readiness.timeout fails; it is killed, the old one serves" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  CFG_READINESS="{timeout: 500ms}" demo_config --no-notify
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial "not ready within 500ms"
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  pid2=$(logged_pid 2)
  [[ -n "$pid2" ]]
  wait_gone "$pid2"
  wait_for settled
  assert_equal "$(answer_pid "$PORT")" "$pid1"

  demo_config
  reload_ok 3
  [[ "$(answer_pid "$PORT")" != "$pid1" ]]
  assert_same_baton
}

@test "status --json reports the failed reload (ok false, the message), then the next good one" {
  demo_config
  start_baton
  assert_equal "$(status_get 'd["last_reload"]')" null

  demo_config --fail-start 3
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_equal "$(status_get 'd["last_reload"]["ok"]')" false
  assert_equal "$(status_get 'd["last_reload"]["reload"]')" 1
  run status_get 'd["last_reload"]["message"]'
  assert_output --partial "exited with status 3 before it was ready"
  assert_equal "$(status_get 'd["state"]')" running
  assert_equal "$(status_get '[g["generation"] for g in d["generations"]]')" "[1]"

  demo_config
  reload_ok 3
  assert_equal "$(status_get 'd["last_reload"]["ok"]')" true
  assert_equal "$(status_get 'd["last_reload"]["reload"]')" 2
}

# ---- hard cases ----

@test "an old generation that ignores SIGTERM is killed with SIGKILL after stop.timeout" {
  CFG_STOP="{timeout: 1s}" demo_config --ignore-sigterm
  start_baton
  pid1=$(answer_pid "$PORT")
  track_pid "$pid1"

  demo_config
  reload_ok 2
  t0=$(date +%s%3N)
  # It got SIGTERM and ignored it: still there right after the reload.
  run pid_gone "$pid1"
  assert_failure
  wait_gone "$pid1"
  t1=$(date +%s%3N)
  wait_log "generation 1 \(pid $pid1\) did not stop within stop.timeout"
  wait_log "generation 1 \(pid $pid1\) was killed by SIGKILL"
  # Killed by the stop.timeout (1s after the stop signal), not at once.
  ((t1 - t0 >= 700))
  assert_equal "$(answer_generation "$PORT")" 2
  assert_same_baton
}

@test "SIGHUP reloads asynchronously" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  kill -HUP "$BATON_PID"
  wait_for generation_answers "$PORT" 2
  wait_log "reload 1 \(received SIGHUP"
  wait_log "reload 1 done"
  wait_gone "$pid1"
  assert_same_baton
}

@test "a burst of 20 SIGHUPs during a reload coalesces into one follow-up reload" {
  # Generation 2 takes 2 s to get ready: the burst lands while reload 1 is in progress, also on a loaded machine
  # (checked below: if it did not, the test says so rather than failing on a count).
  CFG_READINESS="{timeout: 20s}" demo_config --ready-delay 2000
  start_baton

  kill -HUP "$BATON_PID"
  wait_log "reload 1 \(received SIGHUP"
  for _ in $(seq 20); do kill -HUP "$BATON_PID"; done
  if log_has "reload 1 done"; then
    fail "the burst of SIGHUPs took longer than generation 2's 2 s start: the premise of the test does not hold"
  fi
  wait_for generation_answers "$PORT" 3
  wait_for settled

  assert_equal "$(answer_generation "$PORT")" 3
  log_has "it runs as reload 2 once this is done"
  log_has "reload 1 done"
  log_has "reload 2 done"
  run log_has "reload 3"
  assert_failure
  run log_has "generation 4 started"
  assert_failure
  assert_equal "$(live_children "$BATON_PID")" 1
  assert_same_baton
}

@test "two baton reload clients during a reload in progress both succeed, sharing one follow-up reload" {
  demo_config --ready-delay 500
  start_baton

  bg_run r1 timeout 20 "$BATON" reload -c "$CFG"
  wait_log "reload 1 \(control: reload\)"
  bg_run r2 timeout 20 "$BATON" reload -c "$CFG"
  bg_run r3 timeout 20 "$BATON" reload -c "$CFG"
  wait_for bg_done r1
  wait_for bg_done r2
  wait_for bg_done r3

  assert_equal "$(bg_rc r1)" 0
  assert_equal "$(bg_rc r2)" 0
  assert_equal "$(bg_rc r3)" 0
  run bg_out r1
  assert_output --partial "reloaded: generation 2 "
  run bg_out r2
  assert_output --partial "reloaded: generation 3 "
  run bg_out r3
  assert_output --partial "reloaded: generation 3 "
  wait_for settled
  run log_has "reload 3"
  assert_failure
  assert_same_baton
}

@test "SIGTERM during a reload: baton exits 0, both generations are gone, the waiting reload client is told" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  CFG_READINESS="{timeout: 20s}" demo_config --ready-delay 2000
  bg_run r timeout 20 "$BATON" reload -c "$CFG"
  wait_log "generation 2 started"
  pid2=$(logged_pid 2)
  kill -TERM "$BATON_PID"
  baton_wait_exit

  assert_equal "$BATON_STATUS" 0
  pid_gone "$pid1"
  pid_gone "$pid2"
  wait_for bg_done r
  assert_equal "$(bg_rc r)" 1
  run bg_out r
  assert_output --partial "baton is stopping"
  log_has "during reload 1, abandoning it"
}

# ---- strategies ----

@test "reload.strategy restart: the old generation is gone before the new one starts; a client in the gap waits" {
  CFG_EXTRA="reload: {strategy: restart}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  CFG_EXTRA="reload: {strategy: restart}" demo_config --ready-delay 1000
  bg_run r timeout 20 "$BATON" reload -c "$CFG"
  wait_gone "$pid1"
  # The gap: nothing serves. A client connects now; its connection waits in baton's backlog.
  bg_run c curl -fsS --max-time 10 "http://127.0.0.1:$PORT/"
  wait_for client_connected "$PORT"
  run log_has "reload 1 done"
  assert_failure

  wait_for bg_done r
  assert_equal "$(bg_rc r)" 0
  wait_for bg_done c
  assert_equal "$(bg_rc c)" 0
  run bg_out c
  assert_output --partial "generation=2"

  # The order in the log: stop 1, 1 exited, then 2 started.
  stop_line=$(grep -n "stopping generation 1 " "$BATON_LOG" | head -n1 | cut -d: -f1)
  exit_line=$(grep -n "generation 1 (pid $pid1) exited.*starting its replacement" "$BATON_LOG" | head -n1 | cut -d: -f1)
  start_line=$(grep -n "generation 2 started" "$BATON_LOG" | head -n1 | cut -d: -f1)
  [[ -n "$stop_line" && -n "$exit_line" && -n "$start_line" ]]
  ((stop_line < exit_line && exit_line < start_line))
  assert_same_baton
}

# A program that reloads itself: on SIGHUP it appends a line to FILE and reports RELOADING=1, then READY=1.
write_selfreload_program() {
  cat >"$BATS_TEST_TMPDIR/selfreload.py" <<'PY'
import os, signal, socket, sys

def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.send(msg.encode())

def on_hup(signum, frame):
    with open(sys.argv[1], "a") as f:
        f.write("hup\n")
    notify("RELOADING=1")
    notify("READY=1\nSTATUS=reloaded")

signal.signal(signal.SIGHUP, on_hup)
notify("READY=1\nSTATUS=serving")
while True:
    signal.pause()
PY
}

# $CFG for the self-reloading program with reload.strategy signal; LISTENERS (YAML list items) replaces the default.
selfreload_config() {
  local interpreter listeners=${1:-}
  interpreter=$("$PYTHON" -c 'import sys; print(sys.executable)')
  [[ -n "$listeners" ]] || listeners="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}"
  cat >"$CFG" <<EOF
listeners:
$listeners
program:
  command: ["$interpreter", "$BATS_TEST_TMPDIR/selfreload.py", "$BATS_TEST_TMPDIR/hups"]
readiness: {timeout: 2s}
stop: {timeout: 1s}
reload: {strategy: signal}
control: {socket: "$CTL"}
EOF
}

hups() { grep -c hup "$BATS_TEST_TMPDIR/hups" 2>/dev/null || true; }
baton_running() { [[ "$(status_get 'd["state"]')" == running ]]; }

@test "reload.strategy signal: the same process reloads itself; a listener change fails the reload" {
  write_selfreload_program
  selfreload_config
  baton_start run -c "$CFG"
  wait_for baton_running
  pid1=$(status_get 'd["generations"][0]["pid"]')

  run timeout 20 "$BATON" reload -c "$CFG"
  assert_success
  assert_output --partial "generation 1 (pid $pid1) reloaded itself"
  assert_equal "$(hups)" 1
  assert_equal "$(status_get '[(g["generation"], g["pid"]) for g in d["generations"]]')" "[[1, $pid1]]"
  log_has "sending SIGHUP to generation 1 \(pid $pid1\)"

  run timeout 20 "$BATON" reload -c "$CFG"
  assert_success
  assert_equal "$(hups)" 2

  # New sockets cannot reach a running program: the reload fails and the program is not signalled.
  port2=$(free_port)
  selfreload_config "  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: admin, address: \"tcp://127.0.0.1:$port2\"}"
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial "signal cannot give a running program new sockets"
  assert_equal "$(hups)" 2
  assert_equal "$(status_get '[(g["generation"], g["pid"], g["state"]) for g in d["generations"]]')" \
    "[[1, $pid1, \"ready\"]]"
  assert_equal "$(status_get 'd["last_reload"]["ok"]')" false
  assert_same_baton
}

# ---- listeners across reloads ----

@test "reload adds a listener, keeps the unchanged one's very socket, and closes a removed one" {
  port2=$(free_port)
  demo_config
  start_baton
  ino=$(listen_inode "$PORT")
  [[ -n "$ino" ]]
  baton_holds_socket "$ino"
  client_loop_start load "$PORT"

  # Add "admin": both answer, and http is the same socket (queued connections were never dropped).
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: admin, address: \"tcp://127.0.0.1:$port2\"}" demo_config
  reload_ok 2
  assert_equal "$(answer_generation "$PORT")" 2
  assert_equal "$(answer_generation "$port2")" 2
  assert_equal "$(listen_inode "$PORT")" "$ino"
  baton_holds_socket "$ino"
  assert_equal "$(status_get '[(l["name"], l["fd"]) for l in d["listeners"]]')" '[["http", 3], ["admin", 4]]'
  pid2=$(answer_pid "$PORT")
  ino2=$(listen_inode "$port2")

  # Remove "admin": once generation 2 is gone, its port refuses connections.
  demo_config
  reload_ok 3
  wait_gone "$pid2"
  run curl -sS --max-time 5 "http://127.0.0.1:$port2/"
  assert_failure 7
  run baton_holds_socket "$ino2"
  assert_failure
  assert_equal "$(listen_inode "$PORT")" "$ino"
  assert_equal "$(answer_generation "$PORT")" 3

  wait_for client_loop_saw load 3
  client_loop_stop load
  run grep '^fail' "$BATS_TEST_TMPDIR/load.log"
  assert_output ""
  assert_same_baton
}
