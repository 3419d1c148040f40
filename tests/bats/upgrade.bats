#!/usr/bin/env bats
# baton upgrade (baton(1) UPGRADE): the supervisor execs a new binary in place. Same PID, the same listening sockets,
# the programs untouched (still baton's children), the notify and control sockets, the counters and the last reload
# kept; what was in flight (a reload, a drain, a stop timeout, a program watchdog, a log pipe, a control client, a
# restart's backoff) carries on in the new binary. Each way it can fail leaves the old baton serving and makes
# `baton upgrade` exit 1 with the reason. The test builds $BATON_NEXT (another version, the same state format),
# $BATON_V999 (another state format) and $BATON_TAKEOVER_FAILS (accepts the state, then cannot take it over) come from
# tests/meson.build.

load 'helpers'

setup() {
  demo_setup
  : "${BATON_NEXT:?}" "${BATON_V999:?}" "${BATON_TAKEOVER_FAILS:?}"
  VERSION=$("$BATON" --version | cut -d' ' -f2)
}
teardown() { teardown_processes; }

upgrade_ok() {
  run timeout 30 "$BATON" upgrade --control "$CTL" "$@"
  echo "$output"
  assert_success
  assert_output --regexp "^upgraded: baton [^ ]+ is now baton [^ ]+ \(pid $BATON_PID, upgrade [0-9]+\), in [0-9.]+ ms$"
}

# An upgrade that must fail with WHY (a substring) and leave everything as it was.
upgrade_fails() {
  local why=$1
  shift
  run --separate-stderr timeout 30 "$BATON" upgrade --control "$CTL" "$@"
  echo "status $status, stdout: $output, stderr: $stderr"
  assert_equal "$status" 1
  assert_equal "$output" ""
  stderr_has "baton: upgrade failed: "
  stderr_has "$why"
}

# What must not change across an upgrade: baton's PID, the program's PID, the listening socket (its inode).
snapshot() {
  kill -0 "$BATON_PID"
  echo "$(status_get 'd["pid"]') $(status_get '[g["pid"] for g in d["generations"]]') $(listen_inode "$PORT")"
}
listen_inode() {
  awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10; exit }' /proc/net/tcp
}
fd_count() { ls "/proc/$BATON_PID/fd" | wc -l; }

@test "upgrade to the same binary under a client loop: 0 failed requests; baton, program and socket unchanged" {
  demo_config
  start_baton
  before=$(snapshot)
  client_loop_start load "$PORT"
  for i in 1 2 3 4 5; do
    upgrade_ok
    assert_output --partial "baton $VERSION is now baton $VERSION (pid $BATON_PID, upgrade $i)"
  done
  n=$(client_loop_count load ok)
  wait_for eval '(( $(client_loop_count load ok) > n + 20 ))'
  client_loop_stop load
  assert_equal "$(client_loop_count load fail)" 0
  assert_equal "$(snapshot)" "$before"
  assert_equal "$(status_get 'd["upgrades"]')" 5
  assert_equal "$(status_get 'd["version"]')" "$VERSION"
  assert_equal "$(live_children "$BATON_PID")" 1
  log_has "upgrade: baton $VERSION \(pid $BATON_PID\) hands over to $BATON"
  log_has "upgraded: baton $VERSION is now baton $VERSION \(upgrade 5\)"
  # /proc/PID/cmdline is the command line baton was started with, not some internal one.
  assert_equal "$(tr '\0' ' ' <"/proc/$BATON_PID/cmdline")" "$BATON run -c $CFG "
}

@test "upgrade between two builds and back: the version changes, the log and the reply say from which to which" {
  demo_config
  start_baton --log-level debug
  before=$(snapshot)
  upgrade_ok --binary "$BATON_NEXT"
  # --log-level went over too: the new binary logs at debug level.
  status_get 'd["pid"]' >/dev/null
  sed -n '/upgraded: baton/,$p' "$BATON_LOG" | grep -q "debug: control client [0-9]*: status"
  assert_output --partial "baton $VERSION is now baton $VERSION+next (pid $BATON_PID, upgrade 1)"
  assert_equal "$(status_get 'd["version"]')" "$VERSION+next"
  run timeout 10 "$BATON" status --control "$CTL"
  assert_output --partial "baton $VERSION+next, upgrades: 1"
  log_has "upgraded: baton $VERSION is now baton $VERSION\+next \(upgrade 1\)"
  [[ "$(readlink "/proc/$BATON_PID/exe")" == "$BATON_NEXT" ]]
  # Without --binary: the path baton was started from, also after an upgrade to another one.
  upgrade_ok
  assert_output --partial "baton $VERSION+next is now baton $VERSION (pid $BATON_PID, upgrade 2)"
  upgrade_ok --binary "$BATON"
  assert_output --partial "baton $VERSION is now baton $VERSION (pid $BATON_PID, upgrade 3)"
  assert_equal "$(status_get '[d["version"], d["upgrades"]]')" "[\"$VERSION\", 3]"
  assert_equal "$(snapshot)" "$before"
}

@test "after an upgrade, a reload, a crash restart and a stop behave as before; the counters are kept" {
  demo_config
  start_baton
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for generation_answers "$PORT" 2
  upgrade_ok --binary "$BATON_NEXT"
  # The last reload and the generation numbers went over.
  assert_equal "$(status_get '[d["last_reload"]["reload"], d["last_reload"]["ok"], d["generations"][0]["generation"]]')" '[1, true, 2]'
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  assert_output --partial "reloaded: generation 3 "
  wait_for generation_answers "$PORT" 3
  # A crash: restarted as generation 4, counted.
  kill -KILL "$(answer_pid "$PORT")"
  wait_for generation_answers "$PORT" 4
  assert_equal "$(status_get '[d["restarts"], d["upgrades"], d["pid"]]')" "[1, 1, $BATON_PID]"
  run timeout 20 "$BATON" stop --control "$CTL"
  assert_success
  assert_output "stopped"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  ! port_listening "$PORT"
  [[ ! -e "$CTL" ]]
}

@test "failed upgrades (missing, not executable, a directory, exits at once, a wrong answer, another state version, cannot take over) leave the old baton serving" {
  demo_config
  start_baton
  before=$(snapshot)
  client_loop_start load "$PORT"
  fds=$(fd_count)
  bin="$BATS_TEST_TMPDIR/bin"
  mkdir -p "$bin"
  printf '#!/bin/sh\nexit 0\n' >"$bin/exits-at-once"
  printf '#!/bin/sh\necho "usage: something else" >&2\nexit 1\n' >"$bin/wrong-answer"
  cp "$BATON" "$bin/not-executable"
  chmod 755 "$bin/exits-at-once" "$bin/wrong-answer"
  chmod 644 "$bin/not-executable"

  upgrade_fails "$bin/missing: No such file or directory" --binary "$bin/missing"
  upgrade_fails "$bin/not-executable: not executable" --binary "$bin/not-executable"
  upgrade_fails "$bin: not a regular file" --binary "$bin"
  upgrade_fails "$bin/exits-at-once: it does not accept this state (asked with --upgrade-check, it exited with status 0 without saying baton-state-ok)" --binary "$bin/exits-at-once"
  upgrade_fails "$bin/wrong-answer: it does not accept this state: usage: something else (it exited with status 1)" --binary "$bin/wrong-answer"
  upgrade_fails "$BATON_V999: it does not accept this state: state version 1, and this baton ($VERSION+v999) reads version 999" --binary "$BATON_V999"
  upgrade_fails "the new binary cannot take over: this test build of baton $VERSION+takeover-fails refuses to take over" --binary "$BATON_TAKEOVER_FAILS"
  log_has "baton $VERSION\+takeover-fails cannot take over: .*going back to the binary that handed over"
  # Its name is the old binary's again (kernels before 6.14 name a process exec'd from an fd after the fd's number).
  assert_equal "$(cat "/proc/$BATON_PID/comm")" "$(basename "$BATON")"
  # A relative --binary is the client's: made absolute against its directory.
  cd "$bin"
  upgrade_fails "$bin/missing: No such file or directory" --binary missing
  cd - >/dev/null

  assert_equal "$(snapshot)" "$before"
  assert_equal "$(status_get '[d["upgrades"], d["version"], d["state"]]')" "[0, \"$VERSION\", \"running\"]"
  # Nothing leaked: no memfd, pipe or fd of the way back stays open.
  assert_equal "$(fd_count)" "$fds"
  # And the old baton still upgrades.
  upgrade_ok --binary "$BATON_NEXT"
  client_loop_stop load
  assert_equal "$(client_loop_count load fail)" 0
  assert_equal "$(snapshot)" "$before"
}

@test "a binary that hangs when asked for the state is killed after 10s; baton serves on meanwhile" {
  demo_config
  start_baton
  printf '#!/bin/sh\nexec sleep 1000\n' >"$BATS_TEST_TMPDIR/hangs"
  chmod 755 "$BATS_TEST_TMPDIR/hangs"
  bg_run upgrade timeout 30 "$BATON" upgrade --control "$CTL" --binary "$BATS_TEST_TMPDIR/hangs"
  wait_log "upgrade: asking $BATS_TEST_TMPDIR/hangs whether it can take over"
  # The check runs beside the event loop: status and a reload are answered while it waits.
  assert_equal "$(status_get '[d["pid"], d["upgrades"]]')" "[$BATON_PID, 0]"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  ! bg_done upgrade
  wait_for bg_done upgrade
  bg_out upgrade
  assert_equal "$(bg_rc upgrade)" 1
  [[ "$(bg_out upgrade)" == *"$BATS_TEST_TMPDIR/hangs: it does not accept this state (asked with --upgrade-check, it gave no answer within 10s without saying baton-state-ok)"* ]]
  # No sleep was left behind.
  wait_for eval '! pgrep -x sleep -P "$BATON_PID" >/dev/null'
  assert_equal "$(live_children "$BATON_PID")" 1
  assert_equal "$(answer_generation "$PORT")" 2
}

@test "a reload that starts while the new binary is checked: the exec waits for it to end" {
  # The new binary answers the check only once the file "answer" exists.
  printf '#!/bin/sh\nwhile [ ! -e "%s" ]; do sleep 0.05; done\nexec "%s" "$@"\n' "$BATS_TEST_TMPDIR/answer" "$BATON_NEXT" \
    >"$BATS_TEST_TMPDIR/slow"
  chmod 755 "$BATS_TEST_TMPDIR/slow"
  CFG_READINESS="{type: exec, command: [test, -e, \"$BATS_TEST_TMPDIR/go\"], interval: 50ms, timeout: 20s}" demo_config
  touch "$BATS_TEST_TMPDIR/go"
  start_baton
  bg_run upgrade timeout 30 "$BATON" upgrade --control "$CTL" --binary "$BATS_TEST_TMPDIR/slow"
  wait_log "whether it can take over"
  rm "$BATS_TEST_TMPDIR/go"
  bg_run reload timeout 30 "$BATON" reload --control "$CTL"
  wait_log "generation 2 started"
  touch "$BATS_TEST_TMPDIR/answer"
  wait_log "upgrade: waiting for a reload to end"
  ! bg_done upgrade
  touch "$BATS_TEST_TMPDIR/go"
  wait_for bg_done reload
  wait_for bg_done upgrade
  assert_equal "$(bg_rc reload)" 0
  assert_equal "$(bg_rc upgrade)" 0
  assert_equal "$(status_get '[d["state"], d["version"], d["upgrades"], d["generations"][0]["generation"]]')" \
    "[\"running\", \"$VERSION+next\", 1, 2]"
}

@test "without --binary: the path baton was started from, opened afresh (a package upgrade replaced it)" {
  demo_config
  mkdir -p "$BATS_TEST_TMPDIR/usr/bin"
  cp "$BATON" "$BATS_TEST_TMPDIR/usr/bin/baton"
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  # Started through $PATH, as ExecStart=baton or a shell would.
  PATH="$BATS_TEST_TMPDIR/usr/bin:$PATH" baton run -c "$CFG" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_for generation_answers "$PORT" 1
  # dpkg replaces the file: a new inode under the same name; the running one is deleted.
  cp "$BATON_NEXT" "$BATS_TEST_TMPDIR/usr/bin/baton.dpkg-new"
  mv "$BATS_TEST_TMPDIR/usr/bin/baton.dpkg-new" "$BATS_TEST_TMPDIR/usr/bin/baton"
  [[ "$(readlink "/proc/$BATON_PID/exe")" == *"(deleted)" ]]
  upgrade_ok
  assert_output --partial "baton $VERSION is now baton $VERSION+next"
  [[ "$(readlink "/proc/$BATON_PID/exe")" == "$BATS_TEST_TMPDIR/usr/bin/baton" ]]
  log_has "hands over to $BATS_TEST_TMPDIR/usr/bin/baton"
}

@test "an upgrade asked for during a reload waits for it to end, then upgrades" {
  # The new generation gets ready only once the file "go" exists (an exec probe in flight meanwhile).
  CFG_READINESS="{type: exec, command: [test, -e, \"$BATS_TEST_TMPDIR/go\"], interval: 50ms, timeout: 20s}" demo_config
  touch "$BATS_TEST_TMPDIR/go"
  start_baton
  rm "$BATS_TEST_TMPDIR/go"
  bg_run reload timeout 30 "$BATON" reload --control "$CTL"
  wait_log "generation 2 started"
  bg_run upgrade timeout 30 "$BATON" upgrade --control "$CTL" --binary "$BATON_NEXT"
  wait_log "upgrade: waiting for a reload to end"
  ! bg_done upgrade
  assert_equal "$(status_get '[d["state"], d["upgrades"]]')" '["reloading", 0]'
  touch "$BATS_TEST_TMPDIR/go"
  wait_for bg_done reload
  wait_for bg_done upgrade
  bg_out reload
  bg_out upgrade
  assert_equal "$(bg_rc reload)" 0
  assert_equal "$(bg_rc upgrade)" 0
  [[ "$(bg_out upgrade)" == *"is now baton $VERSION+next"* ]]
  assert_equal "$(status_get '[d["state"], d["upgrades"], d["generations"][0]["generation"]]')" '["running", 1, 2]'
  assert_equal "$(answer_generation "$PORT")" 2
}

@test "an upgrade while baton stops is refused: baton is stopping" {
  # The program ignores SIGTERM: the stop waits for stop.timeout.
  child=$(py_child stubborn <<'PY'
signal.signal(signal.SIGTERM, signal.SIG_IGN)
notify("READY=1")
open(os.environ["OUT"], "w").close()
time.sleep(1000)
PY
)
  export OUT="$BATS_TEST_TMPDIR/up"
  CFG_STOP="{timeout: 20s}" write_config "$PYTHON" "$child"
  baton_start run -c "$CFG"
  wait_for test -e "$OUT"
  wait_log "generation 1 is ready"
  kill -TERM "$BATON_PID"
  wait_log "stopping generation 1"
  upgrade_fails "baton is stopping"
  kill -0 "$BATON_PID"
}

@test "in flight across an upgrade: an old generation's stop timeout and a restart's backoff keep their deadlines" {
  # Generation 1 ignores SIGTERM: after the reload it is stopping, and SIGKILL is due at stop.timeout (3s).
  child=$(py_child stubborn <<'PY'
gen = os.environ["BATON_GENERATION"]
if gen == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
notify("READY=1")
time.sleep(1000)
PY
)
  CFG_STOP="{timeout: 3s}" CFG_EXTRA="restart: {delay: 3s}" write_config "$PYTHON" "$child"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_log "stopping generation 1"
  assert_equal "$(status_get '[g["state"] for g in d["generations"]]')" '["ready", "stopping"]'
  upgrade_ok --binary "$BATON_NEXT"
  # The new binary kills it when its timeout is over (it never heard SIGTERM's deadline otherwise).
  wait_log "generation 1 .*(did not stop|SIGKILL)"
  wait_for eval '[[ "$(status_get "len(d[\"generations\"])")" == 1 ]]'
  # A crash, then the backoff (3s) is in flight when the upgrade comes: the restart still happens, once.
  pid2=$(status_get 'd["generations"][0]["pid"]')
  kill -KILL "$pid2"
  wait_for eval '[[ "$(status_get "d[\"state\"]")" == restarting ]]'
  upgrade_ok --binary "$BATON"
  assert_equal "$(status_get 'd["state"]')" restarting
  wait_log "generation 3 is ready"
  assert_equal "$(status_get '[d["state"], d["restarts"], d["upgrades"]]')" '["running", 1, 2]'
}

@test "in flight across an upgrade: a drain (stop.drain) ends on time, and then the old generation is stopped" {
  # It catches the drain signal (SIGURG) as the preload shim's handler would.
  child=$(py_child drainer <<'PY'
signal.signal(signal.SIGURG, lambda *a: None)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
notify("READY=1")
time.sleep(1000)
PY
)
  CFG_PROGRAM="  preload: true" CFG_STOP="{timeout: 5s, drain: 3s}" write_config "$PYTHON" "$child"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_log "draining generation 1 \(pid [0-9]+\) for 3s"
  upgrade_ok --binary "$BATON_NEXT"
  assert_equal "$(status_get '[g["state"] for g in d["generations"]]')" '["ready", "draining"]'
  # stop.drain is over: stop.signal, and generation 1 is gone, the new binary having kept the deadline.
  wait_log "stopping generation 1"
  wait_for eval '[[ "$(status_get "len(d[\"generations\"])")" == 1 ]]'
  assert_equal "$(status_get '[d["generations"][0]["generation"], d["upgrades"]]')" '[2, 1]'
}

@test "in flight across an upgrade: the program watchdog (kept while it pings, enforced when it stops)" {
  child=$(py_child pinger <<'PY'
stop = sys.argv[1]
notify("READY=1")
while not os.path.exists(stop):
    notify("WATCHDOG=1")
    time.sleep(0.1)
time.sleep(1000)
PY
)
  CFG_PROGRAM="  watchdog: 1500ms" write_config "$PYTHON" "$child" "$BATS_TEST_TMPDIR/stop"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  pid=$(status_get 'd["generations"][0]["pid"]')
  for i in 1 2 3; do upgrade_ok --binary "$BATON_NEXT"; done
  # Its pings reach the new binary through the same notify socket: one more watchdog period, still alive.
  deadline=$((SECONDS + 2))
  until ((SECONDS >= deadline)); do
    ! log_has "missed its watchdog" || fail "killed although it pings: $(cat "$BATON_LOG")"
    sleep 0.1
  done
  touch "$BATS_TEST_TMPDIR/stop"
  wait_log "generation 1 \(pid $pid\) missed its watchdog"
  wait_log "generation 2 is ready"
}

@test "in flight across an upgrade: readiness.type log's pipes keep passing the program's output on" {
  child=$(py_child talker <<'PY'
print("ready", flush=True)
n = 0
while True:
    n += 1
    print("line %d" % n, flush=True)
    time.sleep(0.02)
PY
)
  CFG_READINESS="{type: log, pattern: \"^ready\$\", timeout: 10s}" write_config "$PYTHON" "$child"
  baton_start run -c "$CFG"
  wait_log "^line 5$"
  upgrade_ok --binary "$BATON_NEXT"
  n=$(grep -c "^line " "$BATON_LOG")
  wait_for eval '(( $(grep -c "^line " "$BATON_LOG") > n + 20 ))'
  # Nothing was lost or doubled across the exec: the numbers run on, one each.
  run "$PYTHON" -c 'import re, sys
nums = [int(m.group(1)) for m in re.finditer(r"^line (\d+)$", open(sys.argv[1]).read(), re.M)]
print(nums == list(range(1, len(nums) + 1)), len(nums))' "$BATON_LOG"
  assert_output --regexp "^True [0-9]+$"
}

@test "in flight across an upgrade: a control client that connected before it is answered after it" {
  demo_config
  start_baton
  # Connects, waits for the upgrade to be done, then sends its request on the same connection.
  bg_run early "$PYTHON" -c 'import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.02)
s.sendall(b"status\n")
print(s.recv(65536).decode().strip()[:200])' "$CTL" "$BATS_TEST_TMPDIR/connected" "$BATS_TEST_TMPDIR/upgraded"
  wait_for test -e "$BATS_TEST_TMPDIR/connected"
  upgrade_ok --binary "$BATON_NEXT"
  touch "$BATS_TEST_TMPDIR/upgraded"
  wait_for bg_done early
  bg_out early
  [[ "$(bg_out early)" == '{"ok":true,"pid":'"$BATON_PID"* ]]
}

@test "after an upgrade the program's notify messages still reach baton (the same NOTIFY_SOCKET)" {
  child=$(py_child talker <<'PY'
notify("READY=1\nSTATUS=before")
wait_file(sys.argv[1])
notify("STATUS=after the upgrade")
time.sleep(1000)
PY
)
  write_config "$PYTHON" "$child" "$BATS_TEST_TMPDIR/go"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  upgrade_ok --binary "$BATON_NEXT"
  touch "$BATS_TEST_TMPDIR/go"
  wait_for eval '[[ "$(status_get "d[\"generations\"][0][\"status\"]")" == "after the upgrade" ]]'
}

@test "the notify socket file is kept across upgrades (same path, same file), and removed when the upgraded baton exits" {
  child=$(py_child talker <<'PY'
print(os.environ["NOTIFY_SOCKET"], flush=True)
notify("READY=1\nSTATUS=before")
wait_file(sys.argv[1])
notify("STATUS=after the upgrade")
time.sleep(1000)
PY
)
  write_config "$PYTHON" "$child" "$BATS_TEST_TMPDIR/go"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  sock=$(grep -m1 '^/' "$BATON_LOG")
  [[ "$sock" == */notify-"$BATON_PID".sock ]]
  inode=$(stat -c %i "$sock")
  upgrade_ok --binary "$BATON_NEXT"
  upgrade_ok
  [[ -S "$sock" ]]
  assert_equal "$(stat -c %i "$sock")" "$inode"
  touch "$BATS_TEST_TMPDIR/go"
  wait_for eval '[[ "$(status_get "d[\"generations\"][0][\"status\"]")" == "after the upgrade" ]]'
  # A crash restart after the upgrade: the new generation gets the same path, and its READY=1 arrives.
  kill -KILL "$(logged_pid 1)"
  wait_log "generation 2 is ready"
  assert_equal "$(grep -c "^$sock\$" "$BATON_LOG")" 2
  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "$sock" ]]
}

@test "a main process that MAINPID= named (not baton's child) is carried across an upgrade: stop, exit status follow it" {
  RS="$BATS_TEST_TMPDIR/rs"
  mkdir -p "$RS"
  CFG_EXTRA="restart: {policy: never}" write_config "$PYTHON" "$TESTS_DIR/programs/replace-self.py" "$RS" keep-parent
  baton_start run -c "$CFG"
  wait_log 'generation 1 is ready'
  wait_for test -s "$RS/pid.1.1"
  kill -USR2 "$BATON_PID"
  wait_for test -s "$RS/pid.1.2"
  new=$(cat "$RS/pid.1.2")
  wait_log "its main process is now pid $new"
  upgrade_ok --binary "$BATON_NEXT"
  assert_equal "$(status_get 'd["generations"][0]["pid"]')" "$new"
  upgrade_ok
  assert_equal "$(status_get 'd["generations"][0]["pid"]')" "$new"
  # Its parent (the old main process) still lives: the new binary learns of its end through the pidfd.
  kill -0 "$(cat "$RS/pid.1.1")"
  echo 4 >"$RS/exit.$new"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 4
  log_has "generation 1 \(pid $new\) exited with status 4; restart.policy is never, exiting"
}

@test "30 upgrades back to back between two builds leave baton's fd count as it was" {
  demo_config
  start_baton
  fds=$(fd_count)
  for i in $(seq 1 15); do
    upgrade_ok --binary "$BATON_NEXT"
    upgrade_ok --binary "$BATON"
  done
  assert_equal "$(fd_count)" "$fds"
  assert_equal "$(status_get 'd["upgrades"]')" 30
  assert_equal "$(answer_generation "$PORT")" 1
}

@test "with NOTIFY_SOCKET set: upgrades back to back leave baton's fd count as it was, and systemd still hears it" {
  # baton holds one more fd when it has a NOTIFY_SOCKET (notify.c's look at systemd's socket): from the start, and
  # in every binary after an upgrade, not only once it has said something.
  upstream_start
  demo_config
  NOTIFY_SOCKET="$UPSTREAM_SOCKET" start_baton
  wait_upstream 'READY=1'
  fds=$(fd_count)
  for i in 1 2 3; do
    upgrade_ok --binary "$BATON_NEXT"
    assert_equal "$(fd_count)" "$fds"
    upgrade_ok --binary "$BATON"
    assert_equal "$(fd_count)" "$fds"
  done
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for test "$(grep -cE '(^|\|)READY=1(\||$)' "$UPSTREAM_OUT")" -eq 2
}

@test "without cgroups (program.cgroup: never): upgrade keeps the generations, what is left of them, and the orphans" {
  # A program whose worker outlives it: after the reload, generation 1's leftover is a remnant across the upgrade.
  child=$(py_child forker <<'PY'
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(1000)
    os._exit(0)
notify("READY=1")
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
time.sleep(1000)
PY
)
  CFG_STOP="{timeout: 3s}" CFG_PROGRAM="  cgroup: never" write_config "$PYTHON" "$child"
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_log "generation 1 .* exited with status 0"
  upgrade_ok --binary "$BATON_NEXT"
  # The worker that ignored SIGTERM is killed at stop.timeout by the new binary, which knew of it.
  wait_for eval '(( $(ps -o pid= --ppid "$BATON_PID" | wc -l) == 1 ))'
  assert_equal "$(status_get 'd["generations"][0]["generation"]')" 2
}

@test "as PID 1 of a PID namespace: an upgrade keeps PID 1 and its program" {
  demo_config
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  unshare --pid --fork --mount-proc "$BATON" run -c "$CFG" >"$BATON_LOG" 2>&1 &
  track_pid $!
  wait_for generation_answers "$PORT" 1
  run timeout 30 "$BATON" upgrade --control "$CTL" --binary "$BATON_NEXT"
  assert_success
  assert_output --partial "is now baton $VERSION+next (pid 1, upgrade 1)"
  assert_equal "$(answer_generation "$PORT")" 1
  run timeout 20 "$BATON" stop --control "$CTL"
  assert_success
}

@test "upgrade's command line: -c or --control, --binary only for upgrade, an absolute path on the wire" {
  demo_config
  run --separate-stderr "$BATON" upgrade
  assert_usage_error "upgrade needs either -c FILE or --control PATH"
  run --separate-stderr "$BATON" reload --control "$CTL" --binary /bin/true
  assert_usage_error "--binary is an option of upgrade"
  run --separate-stderr "$BATON" upgrade --control "$CTL" --binary ''
  assert_usage_error "--binary needs a path"
  run --separate-stderr "$BATON" upgrade --control "$CTL" --json
  assert_usage_error "--json is an option of status"
  run "$BATON" --help
  assert_output --partial "baton upgrade (-c FILE | --control PATH) [--binary PATH] [--timeout DURATION]"
  # On the wire, a relative path is refused: baton resolves nothing against its own directory.
  start_baton
  run timeout 10 socat -t 10 - "UNIX-CONNECT:$CTL" <<<"upgrade relative/baton"
  assert_output '{"ok":false,"error":"relative/baton: the binary must be an absolute path"}'
  run timeout 10 socat -t 10 - "UNIX-CONNECT:$CTL" <<<"upgrade$(printf ' /x%.0s' {1..2200})"
  assert_output '{"ok":false,"error":"request too long"}'
  assert_equal "$(answer_generation "$PORT")" 1
  # Through -c, like reload.
  upgrade_ok --binary "$BATON_NEXT"
  run timeout 30 "$BATON" upgrade -c "$CFG" --binary "$BATON"
  assert_success
}

@test "upgrades back to back under wrk: no failed request, no socket error" {
  command -v wrk >/dev/null || fail "wrk is not installed (sh contrib/deps.sh --test installs it)"
  demo_config
  start_baton
  # 10 s: at least five upgrades fit also in the sanitizer build on a busy machine (one can take a second there).
  wrk -t 2 -c 16 -d 10s "http://127.0.0.1:$PORT/" >"$BATS_TEST_TMPDIR/wrk.out" 2>&1 &
  wrk_pid=$!
  track_pid "$wrk_pid"
  wait_for client_connected "$PORT"
  n=0
  while kill -0 "$wrk_pid" 2>/dev/null; do
    if ((n % 2)); then bin=$BATON; else bin=$BATON_NEXT; fi
    run timeout 30 "$BATON" upgrade --control "$CTL" --binary "$bin"
    assert_success
    n=$((n + 1))
  done
  wait "$wrk_pid"
  cat "$BATS_TEST_TMPDIR/wrk.out"
  ((n >= 5))
  grep -qE "^ +[0-9]+ requests in" "$BATS_TEST_TMPDIR/wrk.out"
  ! grep -qE "Socket errors|Non-2xx" "$BATS_TEST_TMPDIR/wrk.out"
  assert_equal "$(status_get 'd["upgrades"]')" "$n"
  assert_equal "$(answer_generation "$PORT")" 1
}

@test "the state check (--upgrade-check) names what is wrong with a state it cannot read" {
  check() {
    run --separate-stderr "$BATON" --upgrade-check=3 3<<<"$1"
    echo "status $status, stdout: $output, stderr: $stderr"
    assert_equal "$status" 1
    assert_equal "$output" ""
  }
  check ""
  stderr_has 'not a baton state (no "baton-state" line)'
  check "baton-state 7"
  stderr_has "state version 7, and this baton ($VERSION) reads version 1"
  check $'baton-state 1\nupgrades 1'
  stderr_has 'the state is cut short (no "end" line)'
  check $'baton-state 1\nupgrades x\nend'
  stderr_has "line 2 (upgrades): not a number"
  check $'baton-state 1\nfrobnicate 1\nend'
  stderr_has "line 2 (frobnicate): unknown record"
  check $'baton-state 1\ngen.state ready\nend'
  stderr_has "line 2 (gen.state): a generation's record before any generation"
  check $'baton-state 1\nconfig 100\nlisteners: []'
  stderr_has "line 2 (config): the config is cut short"
  check $'baton-state 1\nconfig 18\nlisteners: [nope]\n\nend'
  stderr_has "line 2 (config): the handed-over config"
  check $'baton-state 1\nend'
  stderr_has "no config"
  run --separate-stderr "$BATON" --upgrade-check=x
  assert_usage_error "invalid '--upgrade-check=x'"
}
