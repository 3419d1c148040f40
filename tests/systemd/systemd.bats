#!/usr/bin/env bats
# baton under a real systemd: PID 1 of a systemd-nspawn container (booted once for this file) that boots the host's
# own root (systemd 252 on Debian 12: meson test 'systemd') or CT_ROOT (Debian 13's root with systemd 257, built by
# trixie-root.sh: meson test 'systemd-257'); the units and configs of contrib/systemd/ as written, baton and
# baton-demo from the build tree at /usr/local/bin. The first line of the TAP output names the systemd.
# Needs root and systemd-container. A machine that cannot boot the container fails every test here, with the
# reason in the output (setup_file fails): these tests never pass or skip silently.

load helpers

setup_file() {
  ct_boot
}

teardown_file() {
  ct_kill
}

# UNITS: what the test uses; on failure their journals are shown. Each test stops its units, passed or not.
UNITS=()

teardown() {
  teardown_processes
  if [[ -z "${BATS_TEST_COMPLETED:-}" ]] && ((${#UNITS[@]})); then
    local u
    for u in "${UNITS[@]}"; do
      echo "--- systemctl status $u" >&2
      sctl status "$u" >&2 || true
      echo "--- journalctl -u $u" >&2
      journal "$u" >&2 || true
    done
  fi
  ((${#UNITS[@]} == 0)) || ct_stop_all "${UNITS[@]}"
  ct_config_restore demo
  ct_config_restore notify-reload
  ct_baton_restore
  systemd_log_level_restore
}

# Asserts the unit runs with baton as its main PID; prints that PID.
main_pid_is_baton() {
  local unit=$1 main
  main=$(prop "$unit" MainPID)
  [[ "$main" =~ ^[1-9][0-9]*$ ]] || { echo "$unit: MainPID is '$main'" >&2; return 1; }
  [[ "$(ct_comm "$main")" == baton ]] || { echo "$unit: MainPID $main is $(ct_comm "$main"), not baton" >&2; return 1; }
  echo "$main"
}

# Asserts the unit is active/running.
assert_running() {
  assert_equal "$(prop "$1" ActiveState)/$(prop "$1" SubState)" active/running
}

# Starts UNIT (a service whose main process is baton; list it in UNITS first, for teardown), asserts it is
# active/running with baton as its main PID, and sets main to that PID: start_unit UNIT
start_unit() {
  run sctl start "$1"
  assert_success
  assert_running "$1"
  main=$(main_pid_is_baton "$1")
}

# The unit's current invocation id (to read the journal of this run only): invocation UNIT
invocation() { prop "$1" InvocationID; }

# Asserts the unit stopped cleanly in its invocation INV: ActiveState=inactive (a unit that failed stays "failed";
# one that stopped cleanly may be unloaded at once, its properties reset, so the journal of the invocation tells the
# rest): baton exited 0 by itself, systemd saw no failure and killed nothing.
assert_stopped_cleanly() {
  local unit=$1 inv=$2
  assert_equal "$(prop "$unit" ActiveState)" inactive
  # journald may take a moment to write what baton printed last.
  wait_for journal_invocation_has "$inv" "exiting with status 0"
  wait_for journal_invocation_has "$inv" "$unit: Deactivated successfully."
  run journal_invocation "$inv"
  assert_output --partial "exiting with status 0"
  assert_output --partial "$unit: Deactivated successfully."
  refute_output --regexp "$unit: (Failed with result|Main process exited|State '.*' timed out|Killing)"
}

@test "every config in contrib/systemd/ passes baton check" {
  for f in "$CONTRIB_SYSTEMD"/*.yaml; do
    run "$BATON" check -c "$f"
    assert_success
  done
}

@test "baton-demo.service as shipped: baton is the main PID, the demo serves behind it as nobody" {
  UNITS=(baton-demo.service)
  start_unit baton-demo.service
  # Type=notify: start returned once baton relayed READY=1, so the demo answers now, without waiting.
  run ct_answer 8080
  assert_success
  assert_output --regexp '^hello from baton-demo pid=[0-9]+ generation=1'
  child=$(ct_answer_pid 8080)
  assert_equal "$(ct_ppid "$child")" "$main"
  assert_equal "$(ct ps -o user= -p "$child" | tr -d ' ')" nobody
  # Delegate=yes: baton lives in the leaf "supervisor" of the unit's cgroup, the generation in "gen-1" beside it.
  run ct grep '^0::' "/proc/$main/cgroup"
  assert_output "0::/system.slice/baton-demo.service/supervisor"
  run ct grep '^0::' "/proc/$child/cgroup"
  assert_output "0::/system.slice/baton-demo.service/gen-1"
  # The program's NOTIFY_SOCKET is a socket file of baton's own (baton.yaml(5) notify.socket), which the program,
  # running as nobody, reached: the unit is active because its READY=1 arrived.
  run ct sh -c "tr '\\0' '\\n' </proc/$child/environ | grep '^NOTIFY_SOCKET='"
  assert_output "NOTIFY_SOCKET=/run/baton/notify-$main.sock"
  run ct test -S "/run/baton/notify-$main.sock"
  assert_success
  inv=$(invocation baton-demo.service)
  run sctl stop baton-demo.service
  assert_success
  assert_stopped_cleanly baton-demo.service "$inv"
  run ct test -e "/run/baton/notify-$main.sock"
  assert_failure
}

@test "baton@demo: MainPID is baton and stays the same across 10 systemctl reload; StatusText is the program's" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  # baton-demo sends STATUS=serving on N sockets with its READY=1; systemd shows it as baton's.
  assert_equal "$(prop baton@demo.service StatusText)" "serving on 1 sockets"
  assert_equal "$(ct_answer_generation 8080)" 1
  for i in $(seq 2 11); do
    run sctl reload baton@demo.service
    assert_success
    assert_equal "$(prop baton@demo.service MainPID)" "$main"
    assert_running baton@demo.service
    # reload returned: generation i serves, the previous one was told to stop.
    assert_equal "$(ct_answer_generation 8080)" "$i"
  done
  assert_equal "$(prop baton@demo.service StatusText)" "serving on 1 sockets"
  assert_equal "$(prop baton@demo.service NRestarts)" 0
  # The program is baton's child, not a restarted unit's.
  assert_equal "$(ct_ppid "$(ct_answer_pid 8080)")" "$main"
}

@test "baton@demo: systemctl reload under a continuous client loop, zero failed requests" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  client_loop_start loop 8080
  for _ in 1 2 3 4 5; do
    run sctl reload baton@demo.service
    assert_success
  done
  wait_for client_loop_saw loop 6
  client_loop_no_failure loop
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
}

@test "baton@demo: systemctl reload fails when the new generation fails; the old one keeps serving" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  child=$(ct_answer_pid 8080)
  # The new generation exits with status 3 instead of becoming ready.
  sed 's|^\(  command: \)\[/usr/local/bin/baton-demo\]|\1[/usr/local/bin/baton-demo, --fail-start, "3"]|' \
    "$CONTRIB_SYSTEMD/demo.yaml" | ct_config demo
  grep -q -- '--fail-start' "$CT_DIR/etc-baton/demo.yaml"
  run ct /usr/local/bin/baton check -c /etc/baton/demo.yaml
  assert_success
  run sctl reload baton@demo.service
  assert_failure
  # The unit stays up, with the same baton and the same program.
  assert_running baton@demo.service
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  assert_equal "$(ct_answer_pid 8080)" "$child"
  assert_equal "$(ct_answer_generation 8080)" 1
  # ExecReload= printed why (baton reload's message is in the unit's journal).
  run journal baton@demo.service
  assert_output --partial "exited with status 3"
  # With the config fixed, the next reload succeeds.
  ct_config_restore demo
  run sctl reload baton@demo.service
  assert_success
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  assert_equal "$(ct_answer_generation 8080)" 3
}

@test "baton@demo with reload.confirm: systemctl reload returns after the window; a version that exits in it is rolled back, the reload fails, StatusText says so" {
  UNITS=(baton@demo.service)
  # reload.confirm 3s under the strategy line of the shipped config.
  confirm_config() {
    sed -e 's|^\(  strategy: replace\).*|\1\n  confirm: 3s|' -e "s|^\(  command: \)\[/usr/local/bin/baton-demo\]|\1[/usr/local/bin/baton-demo$1]|" \
      "$CONTRIB_SYSTEMD/demo.yaml" | ct_config demo
    grep -q "confirm: 3s" "$CT_DIR/etc-baton/demo.yaml"
  }
  confirm_config ""
  run sctl start baton@demo.service
  assert_success
  main=$(main_pid_is_baton baton@demo.service)
  t0=$(date +%s%3N)
  run sctl reload baton@demo.service
  t1=$(date +%s%3N)
  assert_success
  # ExecReload=baton reload returned at the end of the window, not when generation 2 was ready.
  ((t1 - t0 >= 3000))
  assert_equal "$(ct_answer_generation 8080)" 2
  child=$(ct_answer_pid 8080)

  # A version that is ready, then exits with status 2 half a second later.
  confirm_config ', --exit-after-ready, "2", --exit-delay, "500"'
  run sctl reload baton@demo.service
  assert_failure
  run prop baton@demo.service StatusText
  assert_output --regexp '^reload failed: generation 3 exited with status 2, [0-9.]+ s after ready, within reload\.confirm 3s: rolled back, generation 2 keeps serving$'
  assert_running baton@demo.service
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  assert_equal "$(ct_answer_pid 8080)" "$child"
  assert_equal "$(prop baton@demo.service NRestarts)" 0
  run journal baton@demo.service
  assert_output --partial "rolled back, generation 2 keeps serving"
}

@test "baton@demo: systemctl stop ends baton and the program cleanly, ActiveState=inactive, no failure" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  child=$(ct_answer_pid 8080)
  inv=$(invocation baton@demo.service)
  run sctl stop baton@demo.service
  assert_success
  assert_stopped_cleanly baton@demo.service "$inv"
  run ct kill -0 "$main"
  assert_failure
  run ct kill -0 "$child"
  assert_failure
  # baton stopped its generation itself (KillMode=mixed: systemd's SIGTERM went to baton alone), and systemd never
  # had to escalate.
  run journal_invocation "$inv"
  assert_output --partial "received SIGTERM from pid 1, stopping"
  assert_output --partial "stopping generation 1 (pid $child) with SIGTERM"
  assert_output --partial "generation 1 (pid $child) exited with status 0"
  run ct_net curl -sS --max-time 2 http://127.0.0.1:8080/
  assert_failure
}

@test "baton-demo-activated.socket: systemd binds, baton inherits the socket (binds nothing) and serves on it" {
  UNITS=(baton-demo-activated.service baton-demo-activated.socket)
  run sctl start baton-demo-activated.socket
  assert_success
  assert_equal "$(prop baton-demo-activated.socket ActiveState)" active
  assert_equal "$(prop baton-demo-activated.service ActiveState)" inactive
  # Only systemd holds it for now.
  run ct_listening 8080
  assert_success
  assert_output --regexp '^LISTEN .*127\.0\.0\.1:8080 .*users:\(\("systemd",pid=1,fd=[0-9]+\)\)$'

  # The first connection starts the service; it waits in the backlog meanwhile, and is answered.
  run ct_answer 8080
  assert_success
  assert_output --regexp '^hello from baton-demo pid=[0-9]+ generation=1'
  wait_state baton-demo-activated.service active
  main=$(main_pid_is_baton baton-demo-activated.service)
  child=$(ct_answer_pid 8080)
  assert_equal "$(ct_ppid "$child")" "$main"

  # One listening socket on the port, held by systemd (PID 1), baton and the demo: the socket unit's. Had baton
  # bound one itself, there would be two (or baton would have failed with "address in use").
  run ct_listening 8080
  assert_success
  echo "$output" >&2
  assert_equal "${#lines[@]}" 1
  assert_output --partial '("systemd",pid=1,'
  assert_output --partial "(\"baton\",pid=$main,"
  assert_output --partial "(\"baton-demo\",pid=$child,"
  # Nothing about binding or unmatched sockets in baton's journal.
  run journal baton-demo-activated.service
  refute_output --partial "matches no listener"
  refute_output --partial "inherit is required"
  refute_output --partial "ddress already in use"

  # A reload keeps the inherited socket: still the one socket, now served by generation 2.
  run sctl reload baton-demo-activated.service
  assert_success
  assert_equal "$(ct_answer_generation 8080)" 2
  run ct_listening 8080
  assert_equal "${#lines[@]}" 1
  assert_output --partial '("systemd",pid=1,'
  assert_output --partial "(\"baton\",pid=$main,"

  # Stopping the service leaves the socket with systemd; the next connection starts baton again.
  inv=$(invocation baton-demo-activated.service)
  run sctl stop baton-demo-activated.service
  assert_success
  assert_stopped_cleanly baton-demo-activated.service "$inv"
  run ct_listening 8080
  assert_output --regexp 'users:\(\("systemd",pid=1,fd=[0-9]+\)\)$'
  run ct_answer 8080
  assert_success
  assert_output --regexp 'generation=1'
  wait_state baton-demo-activated.service active
  refute [ "$(prop baton-demo-activated.service MainPID)" = "$main" ]
  main_pid_is_baton baton-demo-activated.service
}

@test "baton-hardened.service: starts unprivileged and without capabilities, reloads and stops cleanly" {
  UNITS=(baton-hardened.service)
  start_unit baton-hardened.service
  # DynamicUser=yes, CapabilityBoundingSet= (empty), NoNewPrivileges=yes, the seccomp filter in place.
  refute [ "$(ct ps -o uid= -p "$main" | tr -d ' ')" = 0 ]
  run ct grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' "/proc/$main/status"
  assert_line --regexp '^CapBnd:[[:space:]]+0+$'
  assert_line --regexp '^CapEff:[[:space:]]+0+$'
  assert_line --regexp '^NoNewPrivs:[[:space:]]+1$'
  assert_line --regexp '^Seccomp:[[:space:]]+2$'
  assert_equal "$(prop baton-hardened.service StatusText)" "serving on 1 sockets"
  assert_equal "$(ct_answer_generation 8081)" 1
  # The control socket is in RuntimeDirectory=, where ExecReload= finds it; so is the program's notify socket, the one
  # directory this sandbox lets baton write ($RUNTIME_DIRECTORY).
  run ct test -S /run/baton-hardened/baton.sock
  assert_success
  run ct test -S "/run/baton-hardened/notify-$main.sock"
  assert_success

  for g in 2 3; do
    run sctl reload baton-hardened.service
    assert_success
    assert_equal "$(ct_answer_generation 8081)" "$g"
    assert_equal "$(prop baton-hardened.service MainPID)" "$main"
  done
  # Nothing refused by the sandbox (a system call filtered with EPERM, a read-only path) on the way.
  run journal baton-hardened.service
  refute_output --partial "not permitted"
  refute_output --partial "ermission denied"
  refute_output --partial "ead-only file system"

  inv=$(invocation baton-hardened.service)
  run sctl stop baton-hardened.service
  assert_success
  assert_stopped_cleanly baton-hardened.service "$inv"
  run ct test -e /run/baton-hardened
  assert_failure
}

# ---- Type=notify-reload (systemd 253 and later): systemd sends SIGHUP to baton and waits for its RELOADING=1 (with
# MONOTONIC_USEC= later than the signal), then READY=1.

# On a systemd older than 253 these tests cannot apply: they check that this systemd indeed does not know the type,
# then skip, with the reason in the TAP output.
notify_reload_or_skip() {
  [[ "$CT_SYSTEMD_VERSION" =~ ^[0-9]+$ ]] || { echo "unknown systemd version '$CT_SYSTEMD_VERSION'" >&2; return 1; }
  if ((CT_SYSTEMD_VERSION < 253)); then
    local type
    type=$(prop baton-notify-reload.service Type)
    refute [ "$type" = notify-reload ]
    skip "Type=notify-reload needs systemd 253 or later; this container runs systemd $CT_SYSTEMD_VERSION, which loads baton-notify-reload.service as Type=$type (meson test systemd-257 runs these)"
  fi
}

@test "baton-notify-reload.service (Type=notify-reload): systemctl reload under a client loop, zero failed requests, MainPID kept, a new generation each time" {
  UNITS=(baton-notify-reload.service)
  notify_reload_or_skip
  assert_equal "$(prop baton-notify-reload.service Type)" notify-reload
  assert_equal "$(prop baton-notify-reload.service ReloadSignal)" 1
  start_unit baton-notify-reload.service
  assert_equal "$(ct_answer_generation 8082)" 1
  inv=$(invocation baton-notify-reload.service)
  client_loop_start loop 8082
  for i in 2 3 4 5 6; do
    run sctl reload baton-notify-reload.service
    assert_success
    # systemd waited for baton's READY=1, sent once generation i was ready: it serves as soon as reload returns.
    assert_equal "$(ct_answer_generation 8082)" "$i"
    assert_equal "$(prop baton-notify-reload.service MainPID)" "$main"
    assert_running baton-notify-reload.service
  done
  wait_for client_loop_saw loop 6
  client_loop_no_failure loop
  assert_equal "$(prop baton-notify-reload.service NRestarts)" 0
  assert_equal "$(prop baton-notify-reload.service StatusText)" "serving on 1 sockets"
  # The reloads came by systemd's signal, not by a control command, and systemd saw each one through.
  run journal_invocation "$inv"
  assert_output --partial "received SIGHUP from pid 1"
  refute_output --partial "control: reload"
  [[ "$(grep -c 'Reloaded baton-notify-reload.service' <<<"$output")" == 5 ]]
  ct_answer_pid 8082 >/dev/null
  assert_equal "$(ct_ppid "$(ct_answer_pid 8082)")" "$main"
}

@test "baton-notify-reload.service: a failed reload is rolled back, and systemctl reload still SUCCEEDS (what systemd does with READY=1)" {
  UNITS=(baton-notify-reload.service)
  notify_reload_or_skip
  start_unit baton-notify-reload.service
  child=$(ct_answer_pid 8082)
  inv=$(invocation baton-notify-reload.service)
  # The new generation exits with status 3 instead of becoming ready.
  sed 's|^\(  command: \)\[/usr/local/bin/baton-demo\]|\1[/usr/local/bin/baton-demo, --fail-start, "3"]|' \
    "$CONTRIB_SYSTEMD/notify-reload.yaml" | ct_config notify-reload
  grep -q -- '--fail-start' "$CT_DIR/etc-baton/notify-reload.yaml"
  run sctl reload baton-notify-reload.service
  # systemd (257: service_notify_message() in src/core/service.c) leaves the reload state on READY=1 with
  # service_enter_running(s, SERVICE_SUCCESS); reload_result stays SERVICE_SUCCESS, and ERRNO=/STATUS= change nothing
  # in it. baton sends READY=1 once the failed generation is gone (the old one serving): the reload job succeeds.
  # Only ExecReload=baton reload makes systemctl reload fail (the baton@demo test above).
  assert_success
  run prop baton-notify-reload.service StatusText
  assert_output --regexp '^reload failed: .*generation 2 exited with status 3.*; generation 1 keeps serving$'
  # systemd logged the reload as done, not failed; baton logged why it failed.
  wait_for journal_invocation_has "$inv" "reload 1 failed: the new generation 2 exited with status 3"
  wait_for journal_invocation_has "$inv" "Reloaded baton-notify-reload.service"
  run journal_invocation "$inv"
  refute_output --regexp "baton-notify-reload.service: (Reload|Job .*reload).* failed"
  # baton status, the other place that tells.
  run ct /usr/local/bin/baton status -c /etc/baton/notify-reload.yaml
  assert_success
  assert_output --partial "failed: the new generation 2 exited with status 3"
  # The unit stays up, with the same baton and the same program.
  assert_running baton-notify-reload.service
  assert_equal "$(prop baton-notify-reload.service MainPID)" "$main"
  assert_equal "$(ct_answer_pid 8082)" "$child"
  assert_equal "$(ct_answer_generation 8082)" 1
  assert_equal "$(prop baton-notify-reload.service NRestarts)" 0
  # With the config fixed, the next reload brings generation 3.
  ct_config_restore notify-reload
  run sctl reload baton-notify-reload.service
  assert_success
  assert_equal "$(ct_answer_generation 8082)" 3
  assert_equal "$(prop baton-notify-reload.service MainPID)" "$main"
  assert_equal "$(prop baton-notify-reload.service StatusText)" "serving on 1 sockets"
}

@test "baton-notify-reload.service with reload.confirm: systemctl reload lasts the window (READY=1 only at the commit)" {
  UNITS=(baton-notify-reload.service)
  notify_reload_or_skip
  sed 's|^\(  strategy: replace\).*|\1\n  confirm: 3s|' "$CONTRIB_SYSTEMD/notify-reload.yaml" | ct_config notify-reload
  grep -q "confirm: 3s" "$CT_DIR/etc-baton/notify-reload.yaml"
  run sctl start baton-notify-reload.service
  assert_success
  main=$(main_pid_is_baton baton-notify-reload.service)
  t0=$(date +%s%3N)
  run sctl reload baton-notify-reload.service
  t1=$(date +%s%3N)
  assert_success
  # systemd waited from RELOADING=1 to the READY=1 of the commit: the whole window.
  ((t1 - t0 >= 3000))
  assert_equal "$(ct_answer_generation 8082)" 2
  assert_equal "$(prop baton-notify-reload.service MainPID)" "$main"
  assert_running baton-notify-reload.service
}

# ---- The fd store and the watchdogs. These need baton's fd store (systemd.fd-store) and watchdog support
# (WATCHDOG_USEC pings, program.watchdog), added in commit 8d4e2fb while these tests were written; they are the last
# ones in the file on purpose.

@test "fd store: systemctl restart and kill -9 of baton keep the listening socket open; clients wait, none is refused" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  inv=$(invocation baton@demo.service)
  # demo.yaml: systemd.fd-store: true; baton@.service: FileDescriptorStoreMax=16.
  wait_for journal_invocation_has "$inv" "keeping 1 listening socket(s) in systemd's fd store"
  ino=$(ct_listen_inode 8080)
  [[ -n "$ino" ]]
  client_loop_start loop 8080
  # systemctl restart: baton stops (the demo finishes what it has in hand), a new baton takes the stored socket.
  run sctl restart baton@demo.service
  assert_success
  main_pid_changed baton@demo.service "$main"
  main=$(prop baton@demo.service MainPID)
  assert_equal "$(ct_listen_inode 8080)" "$ino"
  before=$(client_loop_lines loop)
  wait_for eval '(( $(client_loop_lines loop) > before + 20 ))'
  run grep -c '^fail' "$BATS_TEST_TMPDIR/loop.log"
  assert_output 0
  # kill -9: no goodbye at all.
  ct kill -KILL "$main"
  # Restart=on-failure, RestartSec=1s: a new baton, with the socket from the store (LISTEN_FDNAMES=http).
  # The deadline covers systemd's worst case: the final SIGKILL of the cgroup waits up to TimeoutStopSec=45s for it
  # to empty (on a loaded machine it took more than 15 s once), then RestartSec=1s.
  WAIT_SECONDS=60 wait_for main_pid_changed baton@demo.service "$main"
  wait_state baton@demo.service active
  assert_equal "$(prop baton@demo.service NRestarts)" 1
  before=$(client_loop_lines loop)
  wait_for eval '(( $(client_loop_lines loop) > before + 20 ))'
  client_loop_stop loop
  echo "# client loop: $(client_loop_count loop ok) ok, $(client_loop_count loop fail) failed" >&3
  # The very socket: the same inode, never closed, so no connection was refused while baton was away.
  assert_equal "$(ct_listen_inode 8080)" "$ino"
  run grep -c 'Refused' "$BATS_TEST_TMPDIR/loop.log"
  assert_output 0
  # The one request that may fail is the one the demo had accepted when systemd SIGKILLed it with baton's cgroup
  # (KillMode=mixed: the final SIGKILL goes to all): a reset, or an answer cut short. Never a refusal.
  run grep '^fail' "$BATS_TEST_TMPDIR/loop.log"
  echo "$output" >&2
  ((${#lines[@]} <= 1))
  refute_output --regexp 'fail (ConnectionRefusedError|TimeoutError|timeout)'
  # The program serves again under the new baton.
  new=$(prop baton@demo.service MainPID)
  assert_equal "$(ct_ppid "$(ct_answer_pid 8080)")" "$new"
}

@test "systemd's watchdog (WatchdogSec= in baton@.service): baton pings it; a hung baton is killed and restarted" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  assert_equal "$(prop baton@demo.service WatchdogUSec)" 10s
  # baton pings every 5s: systemd records each WATCHDOG=1.
  t0=$(prop baton@demo.service WatchdogTimestampMonotonic)
  WAIT_SECONDS=15 wait_for prop_changed baton@demo.service WatchdogTimestampMonotonic "$t0"
  inv=$(invocation baton@demo.service)
  # Hung: SIGSTOP. After 10s without a ping systemd says so and sends SIGABRT (WatchdogSignal=), then SIGCONT
  # (SendSIGCONT=), so the stopped baton dies; Restart=on-failure starts a new one after RestartSec=1s.
  ct kill -STOP "$main"
  WAIT_SECONDS=30 wait_for journal_invocation_has "$inv" "baton@demo.service: Watchdog timeout (limit 10s)!"
  # As after kill -9 above: up to TimeoutStopSec=45s for the cgroup to empty, then RestartSec=1s.
  WAIT_SECONDS=60 wait_for main_pid_changed baton@demo.service "$main"
  run journal_invocation "$inv"
  assert_output --partial "baton@demo.service: Failed with result 'watchdog'."
  wait_state baton@demo.service active
  assert_equal "$(prop baton@demo.service NRestarts)" 1
  assert_equal "$(ct_answer_generation 8080)" 1
  assert_equal "$(ct_ppid "$(ct_answer_pid 8080)")" "$(prop baton@demo.service MainPID)"
}

@test "program.watchdog: a program that stops pinging is restarted by baton; the unit stays up, same MainPID" {
  UNITS=(baton@demo.service)
  # baton-demo never sends WATCHDOG=1: with program.watchdog it counts as hung 1s after it is ready.
  sed 's|^program:$|program:\n  watchdog: 1s|' "$CONTRIB_SYSTEMD/demo.yaml" | ct_config demo
  run ct /usr/local/bin/baton check -c /etc/baton/demo.yaml
  assert_success
  assert_output --partial "watchdog: 1s"
  start_unit baton@demo.service
  inv=$(invocation baton@demo.service)
  first=$(ct_answer_pid 8080)
  wait_for journal_invocation_has "$inv" "missed its watchdog"
  wait_for journal_invocation_has "$inv" "generation 2 started"
  # baton killed and restarted the program; systemd restarted nothing.
  assert_running baton@demo.service
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  assert_equal "$(prop baton@demo.service NRestarts)" 0
  run ct kill -0 "$first"
  assert_failure
}

# ---- baton upgrade: the running baton execs another baton binary in place (same PID, sockets, generations and
# counters). It sends nothing to systemd meanwhile: no READY=1, RELOADING=1, MAINPID= or STOPPING=1; systemd sees no
# reload, no restart and no new main process. systemd logs each notify message it gets at debug level: these tests
# turn that on, and check the journal for what baton sent (WATCHDOG=1 pings after the upgrade show that the check
# sees messages at all, and that the binary that runs afterwards keeps systemd's watchdog fed).

# Sets systemd's log level to debug; teardown puts back the one it had.
systemd_log_level_debug() {
  [[ -s "$BATS_TEST_TMPDIR/log-level" ]] || sctl log-level >"$BATS_TEST_TMPDIR/log-level"
  sctl log-level debug
}
systemd_log_level_restore() {
  [[ -s "$BATS_TEST_TMPDIR/log-level" ]] || return 0
  sctl log-level "$(cat "$BATS_TEST_TMPDIR/log-level")" || true
  rm -f "$BATS_TEST_TMPDIR/log-level"
}

# Asserts that since CURSOR systemd got from PID (the main PID of baton@demo.service) nothing but WATCHDOG=1 and
# STATUS=, and changed nothing of the unit: no state change, no reload, no new main process. Waits first for a
# WATCHDOG=1 after AFTER (a cursor taken once the upgrade was over; baton pings every 5s with WatchdogSec=10s).
systemd_saw_nothing_since() {
  local cursor=$1 after=$2 main=$3
  WAIT_SECONDS=30 wait_for notify_message_since "$after" baton@demo.service "$main" WATCHDOG=1
  run notify_messages_since "$cursor" baton@demo.service "$main"
  echo "# systemd got from baton: $(sort <<<"$output" | uniq -c | tr -s ' \n' ' ')" >&3
  refute_output --regexp 'READY=1|RELOADING=1|MAINPID=|STOPPING=1|ERRNO=|FDSTORE'
  run journal_since "$cursor" baton@demo.service
  refute_output --regexp 'Changed [a-z-]+ -> |Reloading|Main process exited|Supervising process|New main PID|Failed with result|Killing|Stopping'
}

@test "baton upgrade as the package's postinst runs it: baton@demo moves to the new /usr/local/bin/baton in place under a client loop; same MainPID and program, no restart, nothing sent to systemd, no failed request" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  child=$(ct_answer_pid 8080)
  inv=$(invocation baton@demo.service)
  old=$("$BATON" --version | cut -d' ' -f2)
  client_loop_start loop 8080
  # The new binary arrives as dpkg installs it: written beside the old file, renamed over it. The running baton
  # keeps the old file.
  ct_replace_baton "$BATON_NEXT"
  assert_equal "$(ct_exe "$main")" "/usr/local/bin/baton (deleted)"
  systemd_log_level_debug
  cursor=$(journal_cursor)
  [[ -n "$cursor" ]]
  # debian/baton.postinst's command, for each running instance.
  run ct /usr/local/bin/baton upgrade -c /etc/baton/demo.yaml --binary /usr/local/bin/baton --timeout 60s
  assert_success
  assert_output --regexp "^upgraded: baton ${old//./\\.} is now baton 0\.1\.0\+next \(pid $main, upgrade 1\), in [0-9.]+ ms$"
  after=$(journal_cursor)
  echo "# $output" >&3
  # The same process, now running the new file; the same unit invocation, never restarted.
  assert_equal "$(ct_exe "$main")" /usr/local/bin/baton
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  main_pid_is_baton baton@demo.service
  assert_running baton@demo.service
  assert_equal "$(prop baton@demo.service NRestarts)" 0
  assert_equal "$(invocation baton@demo.service)" "$inv"
  assert_equal "$(prop baton@demo.service StatusText)" "serving on 1 sockets"
  # The same program, still baton's child, in the same cgroups (Delegate=yes).
  assert_equal "$(ct_answer_pid 8080)" "$child"
  assert_equal "$(ct_answer_generation 8080)" 1
  assert_equal "$(ct_ppid "$child")" "$main"
  cgroup=$(prop baton@demo.service ControlGroup)
  run ct grep '^0::' "/proc/$main/cgroup"
  assert_output "0::$cgroup/supervisor"
  run ct grep '^0::' "/proc/$child/cgroup"
  assert_output "0::$cgroup/gen-1"
  run ct /usr/local/bin/baton status -c /etc/baton/demo.yaml
  assert_success
  assert_output --partial "  baton 0.1.0+next, upgrades: 1"
  assert_output --partial "generation 1: pid $child, ready (current)"
  run ct /usr/local/bin/baton status -c /etc/baton/demo.yaml --json
  assert_output --regexp '"version":"0\.1\.0\+next","upgrades":1[,}]'
  systemd_saw_nothing_since "$cursor" "$after" "$main"
  # baton's own account, in the unit's journal.
  run journal_invocation "$inv"
  assert_output --partial "upgraded: baton $old is now baton 0.1.0+next (upgrade 1)"
  before=$(client_loop_lines loop)
  wait_for eval '(( $(client_loop_lines loop) > before + 20 ))'
  client_loop_no_failure loop
}

@test "a failed baton upgrade under systemd (state refused; a new binary that cannot take over) leaves baton@demo as it was: same MainPID, binary and program, serving, nothing sent to systemd" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  child=$(ct_answer_pid 8080)
  inv=$(invocation baton@demo.service)
  version=$("$BATON" --version | cut -d' ' -f2)
  client_loop_start loop 8080
  systemd_log_level_debug
  cursor=$(journal_cursor)
  [[ -n "$cursor" ]]
  # A binary whose state version differs: refused by its own --upgrade-check, before any exec.
  run ct /usr/local/bin/baton upgrade -c /etc/baton/demo.yaml --binary /baton-builds/v999/baton --timeout 60s
  assert_failure 1
  echo "# $output" >&3
  assert_output --regexp '/baton-builds/v999/baton: it does not accept this state: .*state version'
  assert_equal "$(ct_exe "$main")" /usr/local/bin/baton
  # One that passes the check, is executed, refuses the state and goes back to the binary that handed over: here
  # the file baton was started from, which a package upgrade has replaced meanwhile (baton kept it open).
  ct_replace_baton "$BATON_TAKEOVER_FAILS"
  run ct /usr/local/bin/baton upgrade -c /etc/baton/demo.yaml --binary /usr/local/bin/baton --timeout 60s
  assert_failure 1
  echo "# $output" >&3
  assert_output --partial "the new binary cannot take over: this test build of baton 0.1.0+takeover-fails refuses to take over"
  after=$(journal_cursor)
  # The old binary again, the deleted file; the same process, unit and program.
  assert_equal "$(ct_exe "$main")" "/usr/local/bin/baton (deleted)"
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  # The name the process shows (ps, /proc/PID/comm, the journal's _COMM) stays baton across the way back.
  main_pid_is_baton baton@demo.service
  assert_running baton@demo.service
  assert_equal "$(prop baton@demo.service NRestarts)" 0
  assert_equal "$(invocation baton@demo.service)" "$inv"
  assert_equal "$(ct_answer_pid 8080)" "$child"
  assert_equal "$(ct_answer_generation 8080)" 1
  assert_equal "$(ct_ppid "$child")" "$main"
  run ct /usr/local/bin/baton status -c /etc/baton/demo.yaml
  assert_success
  assert_output --partial "  baton $version, upgrades: 0"
  systemd_saw_nothing_since "$cursor" "$after" "$main"
  run journal_invocation "$inv"
  assert_output --partial "upgrade failed, baton $version carries on"
  before=$(client_loop_lines loop)
  wait_for eval '(( $(client_loop_lines loop) > before + 20 ))'
  client_loop_no_failure loop
  # The failures changed nothing: the next upgrade, to a good binary, is upgrade 1.
  ct_replace_baton "$BATON_NEXT"
  run ct /usr/local/bin/baton upgrade -c /etc/baton/demo.yaml --binary /usr/local/bin/baton --timeout 60s
  assert_success
  assert_output --regexp "is now baton 0\.1\.0\+next \(pid $main, upgrade 1\)"
  assert_equal "$(prop baton@demo.service MainPID)" "$main"
  assert_equal "$(ct_answer_pid 8080)" "$child"
}

@test "after baton upgrade: systemctl reload (ExecReload=baton reload) works, an upgrade back without --binary too, and systemctl stop stops cleanly" {
  UNITS=(baton@demo.service)
  start_unit baton@demo.service
  inv=$(invocation baton@demo.service)
  version=$("$BATON" --version | cut -d' ' -f2)
  client_loop_start loop 8080
  run ct /usr/local/bin/baton upgrade -c /etc/baton/demo.yaml --binary /baton-builds/next/baton --timeout 60s
  assert_success
  assert_output --regexp "is now baton 0\.1\.0\+next \(pid $main, upgrade 1\)"
  assert_equal "$(ct_exe "$main")" /baton-builds/next/baton
  systemd_log_level_debug
  cursor=$(journal_cursor)
  for g in 2 3; do
    run sctl reload baton@demo.service
    assert_success
    assert_equal "$(ct_answer_generation 8080)" "$g"
    assert_equal "$(prop baton@demo.service MainPID)" "$main"
    assert_running baton@demo.service
  done
  # The new binary tells systemd about a reload as the old one did (and the journal check of the tests above sees
  # it: the counterpart of what they refute).
  run notify_messages_since "$cursor" baton@demo.service "$main"
  assert_output --regexp 'RELOADING=1'
  assert_output --regexp 'READY=1'
  run journal_since "$cursor" baton@demo.service
  assert_output --partial "Changed running -> reload"
  systemd_log_level_restore
  run ct /usr/local/bin/baton status -c /etc/baton/demo.yaml
  assert_output --regexp "last reload \(#2\): ok: generation 3 \(pid [0-9]+\) is serving"
  assert_output --partial "  baton 0.1.0+next, upgrades: 1"
  # Without --binary: the path baton was started from (ExecStart=/usr/local/bin/baton ...), not the one it runs.
  run ct /usr/local/bin/baton upgrade -c /etc/baton/demo.yaml --timeout 60s
  assert_success
  assert_output --regexp "^upgraded: baton 0\.1\.0\+next is now baton ${version//./\\.} \(pid $main, upgrade 2\)"
  assert_equal "$(ct_exe "$main")" /usr/local/bin/baton
  run sctl reload baton@demo.service
  assert_success
  assert_equal "$(ct_answer_generation 8080)" 4
  run ct /usr/local/bin/baton status -c /etc/baton/demo.yaml
  assert_output --partial "last reload (#3): ok"
  assert_output --partial "  baton $version, upgrades: 2"
  assert_equal "$(prop baton@demo.service NRestarts)" 0
  wait_for client_loop_saw loop 4
  client_loop_no_failure loop
  child=$(ct_answer_pid 8080)
  run sctl stop baton@demo.service
  assert_success
  assert_stopped_cleanly baton@demo.service "$inv"
  run ct kill -0 "$main"
  assert_failure
  run ct kill -0 "$child"
  assert_failure
  run journal_invocation "$inv"
  assert_output --partial "received SIGTERM from pid 1, stopping"
  assert_output --partial "generation 4 (pid $child) exited with status 0"
}

@test "baton upgrade of baton-hardened.service: the new binary is executed and takes over inside the sandbox (no capabilities, seccomp filter, dynamic user)" {
  UNITS=(baton-hardened.service)
  start_unit baton-hardened.service
  child=$(ct_answer_pid 8081)
  version=$("$BATON" --version | cut -d' ' -f2)
  # memfd_create, the --upgrade-check child, execve and, on the way back, execveat: all allowed by the unit's
  # SystemCallFilter=@system-service ~@privileged; /proc/self/exe is there with ProcSubset=pid.
  run ct /usr/local/bin/baton upgrade -c /etc/baton/hardened.yaml --binary /baton-builds/next/baton --timeout 60s
  assert_success
  assert_output --regexp "is now baton 0\.1\.0\+next \(pid $main, upgrade 1\)"
  assert_equal "$(prop baton-hardened.service MainPID)" "$main"
  assert_equal "$(ct_exe "$main")" /baton-builds/next/baton
  assert_running baton-hardened.service
  assert_equal "$(ct_answer_pid 8081)" "$child"
  # The way back, in the sandbox too.
  run ct /usr/local/bin/baton upgrade -c /etc/baton/hardened.yaml --binary /baton-builds/takeover-fails/baton --timeout 60s
  assert_failure 1
  assert_output --partial "refuses to take over"
  assert_equal "$(ct_exe "$main")" /baton-builds/next/baton
  run sctl reload baton-hardened.service
  assert_success
  assert_equal "$(ct_answer_generation 8081)" 2
  run ct /usr/local/bin/baton upgrade -c /etc/baton/hardened.yaml --timeout 60s
  assert_success
  assert_output --regexp "is now baton ${version//./\\.} \(pid $main, upgrade 2\)"
  assert_equal "$(prop baton-hardened.service MainPID)" "$main"
  assert_equal "$(prop baton-hardened.service NRestarts)" 0
  run journal baton-hardened.service
  refute_output --partial "not permitted"
  refute_output --partial "ermission denied"
  inv=$(invocation baton-hardened.service)
  run sctl stop baton-hardened.service
  assert_success
  assert_stopped_cleanly baton-hardened.service "$inv"
}
