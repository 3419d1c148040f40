#!/usr/bin/env bats
# The systemd side of baton without systemd: the program watchdog (program.watchdog), baton's own WATCHDOG=1 pings
# when it is given WATCHDOG_USEC, and the fd store messages (systemd.fd-store, program.fd-store), all seen through
# notify-recv.py standing in for systemd's notify socket. tests/systemd/ checks the same against a real systemd.

load 'helpers'

setup() {
  PORT=$(free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
}

teardown() { teardown_processes; }

# Adds "KEY: VALUE" to the program section that program_config wrote.
program_key() { sed -i "/^  command: /a\\  $1: $2" "$CFG"; }

# A python child that reports ready, then sends WATCHDOG=1 every PERIOD seconds until the file STOP exists.
pinging_child() {
  py_child pinger <<'PY'
period, stop = float(sys.argv[1]), sys.argv[2]
with open(os.environ["OUT"], "w") as f:
    f.write("%s %s\n" % (os.environ.get("WATCHDOG_USEC", "-"), os.environ.get("WATCHDOG_PID", "-")))
notify("READY=1")
while not os.path.exists(stop):
    notify("WATCHDOG=1")
    time.sleep(period)
time.sleep(1000)
PY
}

@test "program.watchdog: the program gets WATCHDOG_USEC and its own WATCHDOG_PID, and is kept while it pings" {
  child=$(pinging_child)
  export OUT="$BATS_TEST_TMPDIR/env.out"
  # Pings every 100 ms against a 1.5 s watchdog: a loaded machine may delay a ping by far more than 100 ms, not by
  # 15 periods.
  CFG_EXTRA=$'restart: {delay: 100ms}' program_config "$PYTHON" "$child" 0.1 "$BATS_TEST_TMPDIR/stop"
  program_key watchdog 1500ms
  run "$BATON" check -c "$CFG"
  assert_success
  assert_output --partial "watchdog: 1500ms"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  wait_for test -s "$OUT"
  pid=$(children_of "$BATON_PID" | head -n1)
  read -r usec wpid <"$OUT"
  [ "$usec" = 1500000 ]
  [ "$wpid" = "$pid" ]
  # Two watchdog periods with pings: still the same generation.
  deadline=$((SECONDS + 3))
  until ((SECONDS >= deadline)); do
    ! log_has "missed its watchdog" || fail "killed although it pings: $(cat "$BATON_LOG")"
    sleep 0.1
  done
  [ "$(children_of "$BATON_PID" | head -n1)" = "$pid" ]
  # It stops pinging: killed within the watchdog, and restarted as after a crash.
  touch "$BATS_TEST_TMPDIR/stop"
  wait_log "generation 1 \(pid $pid\) missed its watchdog \(no WATCHDOG=1 within 1500ms\)"
  wait_log "generation 2 is ready"
  kill -0 "$BATON_PID"
}

@test "program.watchdog: WATCHDOG=trigger kills the generation at once" {
  child=$(py_child trigger <<'PY'
notify("READY=1")
wait_file(sys.argv[1])
notify("WATCHDOG=trigger")
time.sleep(1000)
PY
)
  CFG_EXTRA=$'restart: {delay: 100ms}' program_config "$PYTHON" "$child" "$BATS_TEST_TMPDIR/go"
  program_key watchdog 1h
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  touch "$BATS_TEST_TMPDIR/go"
  wait_log "generation 1 .* asked for its watchdog \(WATCHDOG=trigger\)"
  wait_log "generation 2 is ready"
}

@test "program.watchdog: off by default: a program that never pings is left alone, and gets no WATCHDOG_USEC" {
  export PROBE_OUT="$BATS_TEST_TMPDIR/report"
  CFG_EXTRA="" program_config "$PROBE"
  baton_start run -c "$CFG"
  wait_for report_ready "$PROBE_OUT"
  [ "$(report_get "$PROBE_OUT" env.WATCHDOG_USEC)" = "(unset)" ]
  [ "$(report_get "$PROBE_OUT" env.WATCHDOG_PID)" = "(unset)" ]
  ! log_has "watchdog"
}

@test "baton pings systemd's watchdog (WATCHDOG_USEC for its own pid) at half the interval" {
  upstream_start
  CFG_EXTRA="" program_config "$BATON_DEMO"
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" WATCHDOG_USEC=400000 baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  # Pings every 200 ms: at least 4 within a deadline.
  count_pings() { (($(grep -c '^WATCHDOG=1$' "$UPSTREAM_OUT") >= 4)); }
  wait_for count_pings
}

@test "baton does not take a WATCHDOG_USEC meant for another pid" {
  upstream_start
  CFG_EXTRA="" program_config "$BATON_DEMO"
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" WATCHDOG_USEC=200000 WATCHDOG_PID=1 baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  # A stop request is sent and answered: everything baton sent before it is in the file by then.
  baton_stop
  wait_upstream 'STOPPING=1'
  ! upstream_has 'WATCHDOG=1'
}

@test "systemd.fd-store: true stores every listener under its name with FDPOLL=0, before the program starts" {
  upstream_start
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: admin, address: \"unix:$BATS_TEST_TMPDIR/admin.sock\"}" \
    CFG_EXTRA=$'systemd: {fd-store: "true"}' program_config "$BATON_DEMO"
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  upstream_has 'FDSTORE=1\|FDNAME=http\|FDPOLL=0'
  upstream_has 'FDSTORE=1\|FDNAME=admin\|FDPOLL=0'
  # Stored before the first generation starts, so a crash of baton at any point after leaves them in systemd.
  store=$(upstream_index 'FDNAME=admin')
  start=$(upstream_index 'STATUS=starting generation 1.*')
  ((store < start))
}

@test "systemd.fd-store: auto stores only when systemd announces a store (\$FDSTORE)" {
  upstream_start
  CFG_EXTRA="" program_config "$BATON_DEMO"
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  ! upstream_has 'FDSTORE=1'
  baton_stop
  rm -f "$UPSTREAM_OUT"

  NOTIFY_SOCKET="$UPSTREAM_SOCKET" FDSTORE=16 baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  upstream_has 'FDSTORE=1\|FDNAME=http\|FDPOLL=0'
}

@test "systemd.fd-store: a reload removes the entries of listeners that are gone and stores new ones" {
  upstream_start
  port2=$(free_port)
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: old, address: \"tcp://127.0.0.1:$port2\"}" \
    CFG_EXTRA=$'systemd: {fd-store: "true"}\ncontrol: {socket: '"$BATS_TEST_TMPDIR/ctl.sock"'}' \
    program_config "$BATON_DEMO"
  sed -i '/^control: {socket: ""}$/d' "$CFG"
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  sed -i "s/name: old, address: \"tcp:\/\/127.0.0.1:$port2\"/name: new, address: \"tcp:\/\/127.0.0.1:$port2\"/" "$CFG"
  run "$BATON" reload -c "$CFG"
  assert_success
  wait_upstream 'FDSTOREREMOVE=1\|FDNAME=old'
  wait_upstream 'FDSTORE=1\|FDNAME=new\|FDPOLL=0'
  # Removed first: the renamed listener keeps its socket, which systemd would otherwise see as stored already.
  ((\
    $(upstream_index 'FDSTOREREMOVE=1\|FDNAME=old') < $(upstream_index 'FDSTORE=1\|FDNAME=new\|FDPOLL=0')))
  # http did not change: stored once.
  [ "$(grep -c 'FDNAME=http' "$UPSTREAM_OUT")" = 1 ]
}

@test "program.fd-store: a program's FDSTORE=1 is relayed with its fds when allowed, refused otherwise" {
  upstream_start
  child=$(py_child storer <<'PY'
import array
r, w = os.pipe()
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendmsg([b"FDSTORE=1\nFDNAME=cache\nFDPOLL=0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [r]))], 0, addr)
    s.sendmsg([b"FDSTORE=1\nFDNAME=http"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))], 0, addr)
notify("READY=1")
time.sleep(1000)
PY
)
  CFG_EXTRA="" program_config "$PYTHON" "$child"
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  wait_log "sent FDSTORE=1, refused: program.fd-store is false"
  ! upstream_has 'FDNAME=cache'
  baton_stop
  rm -f "$UPSTREAM_OUT"

  CFG_EXTRA="" program_config "$PYTHON" "$child"
  program_key fd-store true
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_upstream 'READY=1'
  wait_upstream 'FDSTORE=1\|FDNAME=cache\|FDPOLL=0'
  # A listener's name is baton's own entry in the store: not the program's to take.
  wait_log "FDNAME=http, refused: that is a listener's name"
  ! upstream_has 'FDSTORE=1\|FDNAME=http'
}
