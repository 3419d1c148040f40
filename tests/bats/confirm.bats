#!/usr/bin/env bats
# The reload.confirm window (baton(1) RELOAD, "The confirm window and rollback"; baton.yaml(5) RELOAD): a good
# version commits at the end of the window while both generations serve; a version that exits, misses its watchdog,
# says STOPPING=1 or ERRNO=, or fails reload.confirm-command within it is rolled back, the old generation serving on
# with its PID; and the rest of the machine during a window: a second reload, baton stop, baton upgrade, the old
# generation's death, what systemd hears, and the strategies that cannot have a window.

load 'helpers'

setup() { demo_setup; }
teardown() { teardown_processes; }

start_baton() {
  baton_start run -c "$CFG"
  wait_for generation_answers "$PORT" 1
}

# baton is in the confirm window of a reload. Without python3, whose start alone can take a second or more on a
# loaded machine: the windows here are a few seconds long.
confirming() { [[ "$(status_json)" == *'"state":"confirming"'* ]]; }

# baton serves with one generation, no reload running or queued.
settled() {
  [[ "$(status_get '[d["state"], d["reload_in_progress"], d["reload_queued"], len(d["generations"])]')" == \
    '["running", false, false, 1]' ]] && [[ "$(live_children "$BATON_PID")" == 1 ]]
}

# Milliseconds of the monotonic-enough wall clock, from bash itself (no fork).
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

@test "a good version commits at the end of reload.confirm; both generations serve in the window; no failed request" {
  CFG_EXTRA="reload: {confirm: 8s}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")
  client_loop_start load "$PORT"
  wait_for client_loop_saw load 1

  t0=$(now_ms)
  bg_run r timeout 20 "$BATON" reload -c "$CFG"
  wait_for confirming
  # What status says during the window, as text and as JSON (read at once, parsed afterwards).
  status_json >"$BATS_TEST_TMPDIR/window.json"
  run timeout 10 "$BATON" status -c "$CFG"
  assert_output --regexp "baton pid $BATON_PID: confirming, [0-9]+\.[0-9] s left"
  assert_output --partial "generation 2: pid "
  assert_output --partial "(new, confirming)"
  assert_output --partial "generation 1: pid $pid1, ready (current)"
  run "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1]))
print(d["state"], d["confirm"]["generation"], d["confirm"]["window_ms"], d["reload_in_progress"], 0 < d["confirm"]["left_ms"] <= 8000)' \
    "$BATS_TEST_TMPDIR/window.json"
  assert_output "confirming 2 8000 True True"
  # The old generation still serves: it was not told to stop.
  kill -0 "$pid1"
  wait_for client_loop_saw load 2

  wait_for bg_done r
  t1=$(now_ms)
  assert_equal "$(bg_rc r)" 0
  run bg_out r
  assert_output --partial "reloaded: generation 2 "
  assert_output --partial "confirmed after reload.confirm 8s"
  # It returned at the end of the window, not when generation 2 got ready.
  ((t1 - t0 >= 8000))
  wait_gone "$pid1"
  client_loop_stop load

  # Both generations answered during the window: a generation 1 answer after the first generation 2 answer.
  sed -n '/^ok 2$/,$p' "$BATS_TEST_TMPDIR/load.log" | grep -qx "ok 1"
  run grep '^fail' "$BATS_TEST_TMPDIR/load.log"
  assert_output ""
  echo "# requests: $(client_loop_count load ok) ok, of which generation 1 after generation 2's first: $(sed -n '/^ok 2$/,$p' "$BATS_TEST_TMPDIR/load.log" | grep -cx 'ok 1')" >&3
  wait_for settled
  assert_equal "$(answer_generation "$PORT")" 2
}

@test "a version that exits 1 s after ready is rolled back: old PID unchanged, reload exits 1 in time, no refusal" {
  CFG_EXTRA="reload: {confirm: 4s}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")
  client_loop_start load "$PORT"
  wait_for client_loop_saw load 1

  CFG_EXTRA="reload: {confirm: 4s}" demo_config --exit-after-ready 2 --exit-delay 1000
  t0=$(now_ms)
  run timeout 20 "$BATON" reload -c "$CFG"
  t1=$(now_ms)
  assert_failure 1
  assert_output --regexp "generation 2 exited with status 2, [0-9]+\.[0-9] s after ready, within reload\.confirm 4s: rolled back, generation 1 keeps serving"
  # Within the window plus 1 s (it fails about 1 s after ready, not at the end of the window).
  ((t1 - t0 < 5000))
  echo "# baton reload returned after $((t1 - t0)) ms" >&3

  # Requests go on a while against generation 1 alone.
  n=$(client_loop_count load ok)
  wait_for eval '(($(client_loop_count load ok) >= n + 20))'
  client_loop_stop load

  assert_equal "$(answer_pid "$PORT")" "$pid1"
  wait_for settled
  assert_equal "$(status_get 'd["last_reload"]["ok"]')" false
  run status_get 'd["last_reload"]["message"]'
  assert_output --partial "rolled back, generation 1 keeps serving"
  run timeout 10 "$BATON" status -c "$CFG"
  assert_output --partial "last reload (#1): failed: generation 2 exited with status 2"
  # Not restarted: no generation 3.
  run log_has "generation 3 started"
  assert_failure

  # No connection was refused at any time; requests the crashing process had accepted may fail: counted apart.
  refused=$(grep -c '^fail ConnectionRefusedError' "$BATS_TEST_TMPDIR/load.log" || true)
  other=$(grep '^fail' "$BATS_TEST_TMPDIR/load.log" | grep -vc '^fail ConnectionRefusedError' || true)
  echo "# requests: $(client_loop_count load ok) ok, $refused refused, $other accepted by generation 2 and failed" >&3
  grep '^fail' "$BATS_TEST_TMPDIR/load.log" | sort | uniq -c | sed 's/^/#   /' >&3 || true
  assert_equal "$refused" 0
  # Whatever failed was generation 2's own: generation 1 answered every other request.
  ((other <= 5))
}

@test "a failing reload.confirm-command rolls back a version that is up but answers 500; a passing one commits" {
  # The probe asks the shared port until its own generation answers (BATON_GENERATION), and checks that answer.
  cat >"$BATS_TEST_TMPDIR/check.sh" <<EOF
for i in \$(seq 200); do
  code=\$(curl -s --max-time 2 -o "$BATS_TEST_TMPDIR/body.\$\$" -w '%{http_code}' http://127.0.0.1:$PORT/) || continue
  if grep -q "generation=\$BATON_GENERATION\$" "$BATS_TEST_TMPDIR/body.\$\$"; then
    echo "confirm-command: generation \$BATON_GENERATION (pid \$BATON_PID) answered \$code" >>"$BATS_TEST_TMPDIR/check.log"
    rm -f "$BATS_TEST_TMPDIR/body.\$\$"
    [ "\$code" = 200 ]
    exit
  fi
done
exit 0
EOF
  # A window long enough for a few probes of curl on a loaded machine: a probe still running at its end is killed
  # and does not count.
  extra="reload: {confirm: 6s, confirm-command: [/bin/sh, \"$BATS_TEST_TMPDIR/check.sh\"]}"
  CFG_READINESS="{timeout: 10s, interval: 200ms}" CFG_EXTRA="$extra" demo_config
  start_baton

  # A good version: its probes pass, it commits.
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_success
  assert_output --partial "reloaded: generation 2 "
  grep -q "generation 2 (pid [0-9]*) answered 200" "$BATS_TEST_TMPDIR/check.log"
  wait_for settled
  pid2=$(answer_pid "$PORT")

  # Up, ready, but wrong: it answers 500.
  CFG_READINESS="{timeout: 10s, interval: 200ms}" CFG_EXTRA="$extra" demo_config --http-status 500
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --regexp "generation 3 failed reload\.confirm-command \(it exited with status 1\), [0-9.]+ s after ready, within reload\.confirm 6s: rolled back, generation 2 keeps serving"
  grep -q "generation 3 (pid [0-9]*) answered 500" "$BATS_TEST_TMPDIR/check.log"
  wait_for settled
  assert_equal "$(answer_pid "$PORT")" "$pid2"
}

@test "a version that misses its program watchdog in the window is rolled back" {
  # Generation 1 pings (--watchdog, every 1.5 s: room for a loaded machine); the new version does not.
  CFG_PROGRAM="  watchdog: 3s" CFG_EXTRA="reload: {confirm: 8s}" demo_config --watchdog
  start_baton
  pid1=$(answer_pid "$PORT")

  CFG_PROGRAM="  watchdog: 3s" CFG_EXTRA="reload: {confirm: 8s}" demo_config
  t0=$(now_ms)
  run timeout 20 "$BATON" reload -c "$CFG"
  t1=$(now_ms)
  assert_failure 1
  assert_output --regexp "generation 2 missed its watchdog \(no WATCHDOG=1 within 3s\), [0-9]+\.[0-9] s after ready, within reload\.confirm 8s: rolled back, generation 1 keeps serving"
  # At its watchdog, not at the end of the window.
  ((t1 - t0 < 8000))
  wait_log "generation 2 \(pid [0-9]+\) missed its watchdog .*sending SIGKILL"
  wait_for settled
  assert_equal "$(answer_pid "$PORT")" "$pid1"
  # Generation 1 pings: it was kept all along.
  run log_has "generation 1 .*missed its watchdog"
  assert_failure
}

@test "a version that says ERRNO= or STOPPING=1 in the window is rolled back" {
  child=$(py_child says <<'PY'
gen = int(os.environ["BATON_GENERATION"])
notify("READY=1")
if gen > 1:
    time.sleep(0.3)
    notify("ERRNO=5" if gen == 2 else "STOPPING=1")
while True:
    time.sleep(3600)
PY
)
  CFG_EXTRA="reload: {confirm: 5s}" write_config "$PYTHON" "$child"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  pid1=$(logged_pid 1)

  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --regexp "generation 2 sent ERRNO=5, [0-9.]+ s after ready, within reload\.confirm 5s: rolled back, generation 1 keeps serving"
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --regexp "generation 3 sent STOPPING=1, [0-9.]+ s after ready, within reload\.confirm 5s: rolled back, generation 1 keeps serving"
  wait_for settled
  assert_equal "$(status_get '[g["pid"] for g in d["generations"]]')" "[$pid1]"
}

# ---- the rest of the machine ----

@test "a second reload during the window is queued: it runs once the first one has committed" {
  CFG_EXTRA="reload: {confirm: 5s}" demo_config
  start_baton

  bg_run r1 timeout 30 "$BATON" reload -c "$CFG"
  wait_for confirming
  bg_run r2 timeout 30 "$BATON" reload -c "$CFG"
  wait_log "while confirming: it runs as reload 2 once this is done"
  run log_has "generation 3 started"
  assert_failure
  wait_for bg_done r1
  assert_equal "$(bg_rc r1)" 0
  run bg_out r1
  assert_output --partial "reloaded: generation 2 "
  wait_for bg_done r2
  assert_equal "$(bg_rc r2)" 0
  run bg_out r2
  assert_output --partial "reloaded: generation 3 "
  assert_output --partial "confirmed after reload.confirm 5s"
  wait_for settled
}

@test "baton stop during the window stops both generations; the waiting reload client is told" {
  CFG_EXTRA="reload: {confirm: 20s}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  bg_run r timeout 30 "$BATON" reload -c "$CFG"
  wait_for confirming
  pid2=$(logged_pid 2)
  run timeout 20 "$BATON" stop -c "$CFG"
  assert_success
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  pid_gone "$pid1"
  pid_gone "$pid2"
  wait_for bg_done r
  assert_equal "$(bg_rc r)" 1
  run bg_out r
  assert_output --partial "baton is stopping"
}

@test "baton upgrade during the window waits for the commit, as during a reload" {
  CFG_EXTRA="reload: {confirm: 5s}" demo_config
  start_baton

  bg_run r timeout 30 "$BATON" reload -c "$CFG"
  wait_for confirming
  bg_run u timeout 30 "$BATON" upgrade -c "$CFG" --binary "$BATON_NEXT"
  wait_log "upgrade: waiting for a reload to end"
  # Nothing of the window is handed over: the upgrade has not happened while it runs.
  json=$(status_json)
  [[ "$json" == *'"state":"confirming"'* && "$json" == *'"upgrades":0'* ]]
  wait_for bg_done r
  wait_for bg_done u
  assert_equal "$(bg_rc r)" 0
  assert_equal "$(bg_rc u)" 0
  # The reload committed before the upgrade ran.
  done_line=$(grep -n "reload 1 done" "$BATON_LOG" | head -n1 | cut -d: -f1)
  asking_line=$(grep -n "upgrade: asking" "$BATON_LOG" | head -n1 | cut -d: -f1)
  ((done_line < asking_line))
  assert_equal "$(status_get '[d["pid"], d["upgrades"], d["state"]]')" "[$BATON_PID, 1, \"running\"]"
  assert_equal "$(answer_generation "$PORT")" 2
}

@test "the old generation dying during the window: the new one becomes current at once" {
  CFG_EXTRA="reload: {confirm: 20s}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  t0=$(now_ms)
  bg_run r timeout 30 "$BATON" reload -c "$CFG"
  wait_for confirming
  kill -KILL "$pid1"
  wait_for bg_done r
  t1=$(now_ms)
  assert_equal "$(bg_rc r)" 0
  run bg_out r
  assert_output --partial "reloaded: generation 2 "
  assert_output --partial "before the end of reload.confirm: generation 1 was killed by SIGKILL"
  ((t1 - t0 < 20000))
  wait_for settled
  assert_equal "$(answer_generation "$PORT")" 2
  run log_has "generation 3 started"
  assert_failure
  assert_equal "$(status_get 'd["restarts"]')" 0
}

@test "reload.confirm with reload.strategy restart or signal is a validation error naming both keys" {
  CFG_EXTRA="reload: {strategy: restart, confirm: 2s}" demo_config
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_failure
  stderr_has "key 'reload.confirm': needs reload.strategy replace, not restart"
  run --separate-stderr "$BATON" check -c "$CFG" --set reload.strategy=signal
  assert_failure
  stderr_has "key 'reload.confirm': needs reload.strategy replace, not signal"
  run --separate-stderr "$BATON" check -c "$CFG" --set reload.strategy=replace --set reload.confirm=10
  assert_failure
  stderr_has "--set reload.confirm=10: expected a duration with its unit"
  run "$BATON" check -c "$CFG" --set reload.strategy=replace --set reload.confirm=10s
  assert_success
  assert_output --partial "  confirm: 10s"

  # A running baton refuses to reload into it: the old generation serves on.
  CFG_EXTRA="" demo_config
  start_baton
  CFG_EXTRA="reload: {strategy: signal, confirm: 2s}" demo_config
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  assert_output --partial "invalid configuration"
  assert_output --partial "needs reload.strategy replace, not signal"
  assert_equal "$(answer_generation "$PORT")" 1
}

@test "systemd hears RELOADING=1 at the start and READY=1 only at the commit or the rollback" {
  upstream_start
  CFG_EXTRA="reload: {confirm: 6s}" demo_config
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" baton_start run -c "$CFG"
  wait_for generation_answers "$PORT" 1
  wait_upstream "READY=1"
  ready_before=$(grep -c "READY=1" "$UPSTREAM_OUT")

  bg_run r timeout 30 "$BATON" reload -c "$CFG"
  wait_for confirming
  wait_upstream "STATUS=reloading: generation 2 ready, confirming for 6s; generation 1 serving"
  # The window is on (still, checked after the count): no READY=1 since RELOADING=1.
  ready_in_window=$(grep -c "READY=1" "$UPSTREAM_OUT")
  confirming
  upstream_has "RELOADING=1"
  assert_equal "$ready_in_window" "$ready_before"
  wait_for bg_done r
  assert_equal "$(bg_rc r)" 0
  wait_for eval '(($(grep -c "READY=1" "$UPSTREAM_OUT") == ready_before + 1))'

  CFG_EXTRA="reload: {confirm: 4s}" demo_config --exit-after-ready 2 --exit-delay 500
  run timeout 20 "$BATON" reload -c "$CFG"
  assert_failure 1
  wait_upstream "STATUS=reload failed: generation 3 exited with status 2, [0-9.]+ s after ready, within reload.confirm 4s: rolled back, generation 2 keeps serving"
  # READY=1 in the same datagram as the reason.
  grep "rolled back" "$UPSTREAM_OUT" | grep -q "READY=1"
}
