#!/usr/bin/env bats
# The control socket and the reload/status/stop clients (baton(1) CONTROL SOCKET, COMMANDS and EXIT STATUS;
# baton.yaml(5) CONTROL): status as text and JSON, a stop that returns once baton is gone, the socket's mode and
# directory, SO_PEERCRED refusal, malformed, oversized, idle and abusive clients that never block the event loop,
# --timeout, and the clients' exit codes (0 done, 1 failed, 100 usage, 111 unreachable).

load 'helpers'

setup() { demo_setup; }
teardown() { teardown_processes; }

# Sends raw bytes (printf FORMAT) as a request and prints baton's reply: raw_request FORMAT.
raw_request() {
  # shellcheck disable=SC2059
  printf "$1" | timeout 10 socat - "UNIX-CONNECT:$CTL"
}

status_ok() { timeout 10 "$BATON" status --control "$CTL" >/dev/null; }

@test "status prints the generations and listeners as text, and --json as one JSON object" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  run timeout 10 "$BATON" status -c "$CFG"
  assert_success
  assert_line --index 0 --partial "baton pid $BATON_PID: running"
  assert_output --partial "generation 1: pid $pid1, ready (current)"
  assert_output --partial "listener http: fd 3, tcp://127.0.0.1:$PORT"
  assert_output --partial "no reload yet"
  assert_output --partial "restarts: 0"

  run timeout 10 "$BATON" status --control "$CTL" --json
  assert_success
  assert_equal "${#lines[@]}" 1
  echo "$output" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
pid, baton_pid, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
assert d["ok"] is True, d
assert d["state"] == "running", d
assert d["pid"] == baton_pid, d
assert len(d["generations"]) == 1, d
g = d["generations"][0]
assert (g["generation"], g["pid"], g["state"], g["role"]) == (1, pid, "ready", "current"), g
assert d["listeners"] == [{"name": "http", "fd": 3, "address": "tcp://127.0.0.1:" + port, "inherited": False}], d
assert d["last_reload"] is None and d["restarts"] == 0 and d["reload_in_progress"] is False, d
' "$pid1" "$BATON_PID" "$PORT"
}

@test "stop returns 0 only once baton and its child have exited, and the socket file is removed" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  run timeout 20 "$BATON" stop -c "$CFG"
  assert_success
  assert_output "stopped"
  # Right after it returned: nothing is left.
  pid_gone "$BATON_PID"
  pid_gone "$pid1"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "$CTL" ]]
  log_has "control: stop, stopping"
}

@test "the control socket has mode 0600 and its missing directories are created" {
  CTL="$BATS_TEST_TMPDIR/run/nested/dir/ctl.sock"
  demo_config
  [[ ! -e "$BATS_TEST_TMPDIR/run" ]]
  start_baton

  [[ -S "$CTL" ]]
  assert_equal "$(stat -c %a "$CTL")" 600
  assert_equal "$(stat -c %u "$CTL")" "$(id -u)"
  assert_equal "$(stat -c %a "$BATS_TEST_TMPDIR/run/nested/dir")" 755
  status_ok

  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "$CTL" ]]
}

@test "another user is refused: by the socket's mode, and by SO_PEERCRED when the mode was opened up" {
  [[ "$(id -u)" == 0 ]] || skip "needs root to run a client as another user (uid $(id -u))"
  as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  # nobody must reach the socket's directory and a baton to run.
  public_bins BATON
  demo_config
  start_baton

  # Mode 0600: connect() itself is refused.
  run timeout 10 "${as_nobody[@]}" "$BATON" status --control "$CTL"
  assert_failure 111
  assert_output --partial "permission denied"

  # Mode 0666: baton checks the peer's uid and says no.
  chmod 0666 "$CTL"
  run timeout 10 "${as_nobody[@]}" "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "permission denied"
  run timeout 10 "${as_nobody[@]}" "$BATON" stop --control "$CTL"
  assert_failure 1
  assert_output --partial "permission denied"
  wait_log "Refusing control connection from pid [0-9]+ uid 65534"

  # Nothing happened, and root is still served.
  kill -0 "$BATON_PID"
  run log_has "reload 1"
  assert_failure
  assert_equal "$(answer_generation "$PORT")" 1
  status_ok
}

@test "malformed requests get an error reply and baton keeps serving" {
  demo_config
  start_baton

  run raw_request 'bogus\n'
  assert_output '{"ok":false,"error":"unknown request '\''bogus'\''"}'
  run raw_request "$(printf 'x%.0s' {1..5000})\n"
  assert_output '{"ok":false,"error":"request too long"}'
  # baton drops what it did not read before it closes: the client sees its reply and a clean end, not a reset
  # (closing a unix socket with unread bytes resets it, and socat 1.8 reports that).
  run "$PYTHON" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"x" * 5000 + b"\n")
got = b""
try:
    while chunk := s.recv(4096):
        got += chunk
    print(got.decode().strip(), "then EOF")
except ConnectionResetError:
    print(got.decode().strip(), "then a reset")' "$CTL"
  assert_output '{"ok":false,"error":"request too long"} then EOF'
  run raw_request '\n'
  assert_output '{"ok":false,"error":"empty request"}'
  run raw_request 'status\0\n'
  assert_output '{"ok":false,"error":"invalid request"}'
  run raw_request 'reload now\n'
  assert_output --partial '"ok":false'

  # The protocol itself, as baton(1) shows it.
  run raw_request 'status\n'
  assert_output --partial '{"ok":true,"pid":'"$BATON_PID"
  assert_equal "${#lines[@]}" 1

  run log_has "reload 1"
  assert_failure
  assert_equal "$(answer_generation "$PORT")" 1
  status_ok
}

@test "40 idle connections: the ones over the limit are refused, and baton answers again once they close" {
  demo_config
  start_baton

  run timeout 20 "$PYTHON" - "$CTL" "$BATON" <<'PY'
import select, socket, subprocess, sys, time
path, baton = sys.argv[1], sys.argv[2]
socks = []
for _ in range(40):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    socks.append(s)
# The refused ones are answered at once; the others wait (baton drops them after 5s).
replies = {}
deadline = time.monotonic() + 4
while time.monotonic() < deadline and len(replies) < 8:
    ready, _, _ = select.select([s for s in socks if s not in replies], [], [], 0.05)
    for s in ready:
        replies[s] = s.recv(200).decode().strip()
print("refused", len(replies))
for r in sorted(set(replies.values())):
    print("reply", r)
st = subprocess.run([baton, "status", "--control", path], capture_output=True, text=True, timeout=10)
print("status while full:", st.returncode, st.stderr.strip())
held = [s for s in socks if s not in replies]
ready, _, _ = select.select(held, [], [], 0)
print("held", len(held), "answered", len(ready))
for s in socks:
    s.close()
PY
  assert_success
  assert_line "refused 8"
  assert_line 'reply {"ok":false,"error":"too many control connections"}'
  assert_line "status while full: 1 baton: status failed: too many control connections"
  assert_line "held 32 answered 0"
  wait_for status_ok
  assert_equal "$(answer_generation "$PORT")" 1
}

@test "reload --timeout gives up with 111 while the reload goes on and completes" {
  demo_config
  start_baton

  CFG_READINESS="{timeout: 5s}" demo_config --ready-delay 3000
  run timeout 20 "$BATON" reload --control "$CTL" --timeout 200ms
  assert_failure 111
  assert_output --partial "no reply from baton within 200ms"
  assert_equal "$(status_get 'd["reload_in_progress"]')" true

  wait_for generation_answers "$PORT" 2
  wait_log "reload 1 done"
  assert_equal "$(status_get 'd["last_reload"]["ok"]')" true
}

@test "the clients exit 111 with 'cannot connect' when baton is not running" {
  demo_config
  run timeout 10 "$BATON" reload -c "$CFG"
  assert_failure 111
  assert_output --partial "cannot connect"
  run timeout 10 "$BATON" status --control "$CTL"
  assert_failure 111
  assert_output --partial "cannot connect"
  run timeout 10 "$BATON" stop -c "$CFG"
  assert_failure 111
  assert_output --partial "cannot connect"
}

@test "the clients exit 100 on usage errors" {
  demo_config
  run "$BATON" reload
  assert_failure 100
  assert_output --partial "either -c FILE or --control PATH"
  run "$BATON" reload -c "$CFG" --control "$CTL"
  assert_failure 100
  assert_output --partial "either -c FILE or --control PATH"
  run "$BATON" status -c "$CFG" --timeout 1s
  assert_failure 100
  assert_output --partial "--timeout is an option of reload, upgrade and stop"
  run "$BATON" stop -c "$CFG" --json
  assert_failure 100
  run "$BATON" reload -c "$CFG" --timeout 5
  assert_failure 100
  run "$BATON" status -c "$CFG" extra
  assert_failure 100
}
