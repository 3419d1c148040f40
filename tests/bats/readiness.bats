#!/usr/bin/env bats
# Readiness for programs that do not send READY=1 (readiness.type exec, log, pidfile, delay, none): each type becomes
# ready at its moment and not before (baton status while waiting, the reload's duration), each type's failure at the
# first start (baton's exit status) and on a reload (baton reload fails, the old generation keeps serving); the pid
# file's daemon followed; and the program keys that came with them: program.stdin, program.compat, program.preload
# and stop.drain (only the environment and warnings baton gives; the shim itself is tested where it is written).

load 'helpers'

setup() {
  # demo_setup's names, with the port from $PYTHON (free_port's python3 may be a slow pyenv shim).
  PORT=$(probe_free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  CTL="$BATS_TEST_TMPDIR/ctl.sock"
  T=$BATS_TEST_TMPDIR
  # The shim stand-in: any readable shared library (only its path matters here), loaded harmlessly by the children.
  SHIM="$T/libshim-standin.so"
}
# The shell forgets its jobs first: a baton still running is killed without a "Killed" line in the TAP output.
teardown() {
  disown -a 2>/dev/null || true
  teardown_processes
}

# Writes $CFG: rd_config COMMAND [ARG]... The listener "http" on $PORT (CFG_LISTENERS replaces it), program lines
# PROGRAM_EXTRA (indented two spaces) after the command, readiness CFG_READINESS, stop CFG_STOP ("{timeout: 2s}"),
# the control socket $CTL, and CFG_EXTRA (more top-level YAML) when set. Every program gets T in its environment.
rd_config() {
  local program="  environment: {T: \"$T\"${CFG_ENV:+, $CFG_ENV}}"
  [[ -z "${PROGRAM_EXTRA:-}" ]] || program+=$'\n'"$PROGRAM_EXTRA"
  CFG_PROGRAM="$program" write_config "$@"
}

# Writes a shell script to $T/NAME.sh (its body from stdin) and prints its path.
sh_child() {
  local file="$T/$1.sh"
  {
    echo '#!/bin/sh'
    cat
  } >"$file"
  chmod +x "$file"
  echo "$file"
}

# Starts baton on $CFG with its stdout and stderr apart ($T/out, $T/err; BATON_LOG is the stderr): run_split ARG...
run_split() {
  BATON_LOG="$T/err"
  "$BATON" run -c "$CFG" "$@" >"$T/out" 2>"$T/err" &
  BATON_PID=$!
  track_pid "$BATON_PID"
}

# baton's state from the first line of `baton status` ("baton pid N: STATE (CONFIG)"): no python per poll.
sup_state() { timeout 10 "$BATON" status --control "$CTL" | sed -n '1s/^baton pid [0-9]*: \([a-z]*\).*/\1/p'; }
sup_state_is() { [[ "$(sup_state)" == "$1" ]]; }
# The state of generation N, from its line in `baton status` ("  generation N: pid P, STATE[ (current)], up ...").
gen_state() { timeout 10 "$BATON" status --control "$CTL" | sed -n "s/^  generation $1: pid [0-9]*, \([a-z]*\).*/\1/p"; }
# The current generation's number and pid, as "N PID".
current_gen() {
  timeout 10 "$BATON" status --control "$CTL" |
    sed -n 's/^  generation \([0-9]*\): pid \([0-9]*\), [a-z]* (current),.*/\1 \2/p'
}

# A negative check over a window: "$@" stays true for SECONDS (polled every 50 ms). It waits for nothing; it says
# that something did not happen within the window (the old generation's daemon in the pid file is not taken).
holds_for() {
  local whole=${1%.*} frac=0 end
  [[ "$1" != *.* ]] || frac=${1#*.}
  frac="${frac}000000"
  end=$((${EPOCHREALTIME/./} + 10#$whole * 1000000 + 10#${frac:0:6}))
  shift
  while ((${EPOCHREALTIME/./} < end)); do
    "$@" || { echo "no longer true: $*" >&2; return 1; }
    sleep 0.05
  done
}

# Waits for baton to exit and checks its status: exits_with STATUS
exits_with() {
  baton_wait_exit
  [[ "$BATON_STATUS" == "$1" ]] && return 0
  echo "baton exited $BATON_STATUS, not $1; its log:" >&2
  cat "$BATON_LOG" >&2
  return 1
}

# The reload's message after `bg_run reload ...`: succeeds when it exited RC and printed TEXT (literally).
reload_result_is() {
  local rc=$1 text=$2
  [[ "$(bg_rc reload)" == "$rc" ]] && [[ "$(bg_out reload)" == *"$text"* ]] ||
    { echo "reload exited $(bg_rc reload): $(bg_out reload)" >&2; return 1; }
}

# Generation 1 serves and keeps serving after a failed reload: its pid is alive and it is current.
still_serving() {
  local pid=$1
  kill -0 "$pid"
  assert_equal "$(current_gen)" "1 $pid"
  assert_equal "$(sup_state)" running
}

# ---- exec ----

@test "exec: ready once readiness.command exits 0, not before; the probe's environment; READY=1 ignored; reload" {
  app=$(py_child app <<'PY'
notify("READY=1")  # not the readiness source with readiness.type exec
open(os.environ["T"] + "/sent." + os.environ["BATON_GENERATION"], "w").close()
signal.pause()
PY
  )
  probe=$(sh_child probe <<'SH'
echo "$BATON_PID $BATON_GENERATION $FOO $(pwd) $(id -u)" >>"$T/probe.$BATON_GENERATION"
test -e "$T/ok.$BATON_GENERATION"
SH
  )
  mkdir "$T/wd"
  CFG_ENV="FOO: bar" PROGRAM_EXTRA="  working-directory: \"$T/wd\"" \
    CFG_READINESS="{type: exec, command: [/bin/sh, \"$probe\"], interval: 50ms, timeout: 20s}" \
    rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG" --log-level debug

  wait_for test -e "$T/sent.1"
  wait_log 'generation 1 sent READY=1, ignored: readiness.type is exec'
  # The probe failed and ran again (every readiness.interval).
  wait_for eval '(($(wc -l <"$T/probe.1") >= 3))'
  assert_equal "$(sup_state)" starting
  assert_equal "$(gen_state 1)" starting
  pid1=$(logged_pid 1)
  # BATON_PID is the program's pid, BATON_GENERATION its generation; program.environment and working-directory too.
  assert_equal "$(head -n1 "$T/probe.1")" "$pid1 1 bar $T/wd 0"

  touch "$T/ok.1"
  wait_for sup_state_is running
  log_has "generation 1 \(pid $pid1\): readiness.command exited 0"
  assert_equal "$(current_gen)" "1 $pid1"

  # A reload: generation 2 is probed too, and the reload waits for it.
  bg_run reload timeout 20 "$BATON" reload --control "$CTL"
  wait_for test -s "$T/probe.2"
  wait_for test -e "$T/sent.2"
  run status_get '[d["reload_in_progress"], [(g["generation"], g["state"], g["role"]) for g in d["generations"]]]'
  assert_output '[true, [[2, "starting", "new"], [1, "ready", "current"]]]'
  pid2=$(logged_pid 2)
  assert_equal "$(head -n1 "$T/probe.2")" "$pid2 2 bar $T/wd 0"
  touch "$T/ok.2"
  wait_for bg_done reload
  reload_result_is 0 "reloaded: generation 2 (pid $pid2) is serving"
  wait_gone "$pid1"
  assert_equal "$(current_gen)" "2 $pid2"
}

@test "exec: first start: a probe that never succeeds ends baton with 102; a program that exits, with its status" {
  app=$(py_child app <<'PY'
signal.pause()
PY
  )
  CFG_READINESS="{type: exec, command: [/bin/false], interval: 50ms, timeout: 1s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_log 'generation 1 started'
  pid1=$(logged_pid 1)
  exits_with 102
  log_has 'generation 1 \(pid [0-9]+\) was not ready within 1s \(readiness.timeout\)'
  pid_gone "$pid1"

  CFG_READINESS="{type: exec, command: [/bin/false], interval: 50ms, timeout: 5s}" rd_config /bin/sh -c "exit 7"
  baton_start run -c "$CFG"
  exits_with 7
  log_has 'generation 1 \(pid [0-9]+\) exited with status 7 before it was ready'
}

@test "exec: a reload whose probe never succeeds, or whose program exits, fails; the old generation serves on" {
  app=$(py_child app <<'PY'
if os.path.exists(os.environ["T"] + "/exit." + os.environ["BATON_GENERATION"]):
    sys.exit(4)
signal.pause()
PY
  )
  probe=$(sh_child probe <<'SH'
touch "$T/probed.$BATON_GENERATION"
test -e "$T/ok.$BATON_GENERATION"
SH
  )
  touch "$T/ok.1"
  CFG_READINESS="{type: exec, command: [/bin/sh, \"$probe\"], interval: 50ms, timeout: 1s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  pid1=$(logged_pid 1)

  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "the new generation 2 was not ready within 1s (readiness.timeout); generation 1 keeps serving"
  [[ -e "$T/probed.2" ]]
  wait_gone "$(logged_pid 2)"
  still_serving "$pid1"

  touch "$T/exit.3"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "the new generation 3 exited with status 4 before it was ready; generation 1 keeps serving"
  still_serving "$pid1"
}

@test "exec: the probe runs as program.user, like the program" {
  # Only a probe run as nobody succeeds; a root probe would leave the start to time out (102).
  CFG_READINESS="{type: exec, command: [/bin/sh, -c, \"test \$(id -un) = nobody\"], interval: 50ms, timeout: 5s}" \
    PROGRAM_EXTRA="  user: nobody
  working-directory: /" rd_config /bin/sleep 60
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  assert_equal "$(ps -o user= -p "$(logged_pid 1)")" nobody
}

@test "exec: a probe still running when the new generation exits is not left behind" {
  app=$(py_child app <<'PY'
if os.environ["BATON_GENERATION"] == "2":
    wait_file(os.environ["T"] + "/exit.2")
    sys.exit(4)
signal.pause()
PY
  )
  # Generation 1's probe succeeds at once; generation 2's hangs (and says its pid).
  probe=$(sh_child probe <<'SH'
[ "$BATON_GENERATION" = 1 ] && exit 0
echo $$ >"$T/probe-pid.tmp" && mv "$T/probe-pid.tmp" "$T/probe-pid"
exec sleep 60
SH
  )
  CFG_READINESS="{type: exec, command: [/bin/sh, \"$probe\"], interval: 50ms, timeout: 20s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  pid1=$(logged_pid 1)

  bg_run reload timeout 20 "$BATON" reload --control "$CTL"
  wait_for test -s "$T/probe-pid"
  probe_pid=$(cat "$T/probe-pid")
  track_pid "$probe_pid"
  touch "$T/exit.2"
  wait_for bg_done reload
  reload_result_is 1 "the new generation 2 exited with status 4 before it was ready; generation 1 keeps serving"
  still_serving "$pid1"
  # Its generation is gone: its probe has nothing left to probe (killed with it, so a short deadline).
  WAIT_SECONDS=2 wait_gone "$probe_pid"
}

# ---- log ----

@test "log: ready when readiness.pattern matches a line of the chosen stream; both streams pass through unchanged" {
  app=$(py_child app <<'PY'
T = os.environ["T"]
out, err = sys.stdout.buffer, sys.stderr.buffer
out.write(b"partial \x00\xff\xfe no newline yet"); out.flush()
wait_file(T + "/go1")
err.write(b"READY on port 1\n"); err.flush()  # matches, but on stderr, which is not read
out.write(b" ... not READY on port 1\n"); out.flush()
wait_file(T + "/go2")
out.write(b"READY on port 8080\n"); out.flush()
out.write(b"after ready, no newline"); out.flush()
err.write(b"stderr after ready\n"); err.flush()
signal.pause()
PY
  )
  CFG_READINESS="{type: log, pattern: \"^READY on port [0-9]+\$\", stream: stdout, timeout: 20s}" \
    rd_config "$PYTHON" "$app"
  run_split

  # A partial line goes out at once, before its newline.
  wait_for grep -q 'no newline yet' "$T/out"
  assert_equal "$(sup_state)" starting
  touch "$T/go1"
  # The pattern on the stream not chosen, and an unanchored match, do not count.
  wait_for grep -q 'not READY on port 1$' "$T/out"
  wait_for grep -q '^READY on port 1$' "$T/err"
  assert_equal "$(sup_state)" starting
  assert_equal "$(gen_state 1)" starting

  touch "$T/go2"
  wait_for sup_state_is running
  log_has 'generation 1 \(pid [0-9]+\): its stdout matched readiness.pattern'
  wait_for grep -q 'after ready, no newline' "$T/out"
  wait_for grep -q '^stderr after ready$' "$T/err"
  # baton's stdout holds exactly the program's stdout bytes (its own log goes to stderr).
  "$PYTHON" - "$T/out" <<'PY'
import sys
want = b"partial \x00\xff\xfe no newline yet ... not READY on port 1\nREADY on port 8080\nafter ready, no newline"
got = open(sys.argv[1], "rb").read()
assert got == want, got
PY
  run grep -c 'baton:' "$T/out"
  assert_output 0
}

@test "log: stream both matches stderr too; a reload waits for the new generation's line; output passes on" {
  app=$(py_child app <<'PY'
g = os.environ["BATON_GENERATION"]
print("gen %s stdout line" % g, flush=True)
print("gen %s stderr line" % g, file=sys.stderr, flush=True)
wait_file(os.environ["T"] + "/go." + g)
print("ready gen %s" % g, file=sys.stderr, flush=True)
wait_file(os.environ["T"] + "/more." + g)
print("gen %s still talking" % g, flush=True)
signal.pause()
PY
  )
  CFG_READINESS="{type: log, pattern: \"^ready gen [0-9]+\$\", timeout: 20s}" rd_config "$PYTHON" "$app"
  run_split
  wait_for grep -q '^gen 1 stderr line$' "$T/err"
  wait_for grep -q '^gen 1 stdout line$' "$T/out"
  assert_equal "$(sup_state)" starting
  touch "$T/go.1"
  wait_for sup_state_is running
  log_has 'generation 1 \(pid [0-9]+\): its stderr matched readiness.pattern'
  pid1=$(logged_pid 1)

  bg_run reload timeout 20 "$BATON" reload --control "$CTL"
  wait_for grep -q '^gen 2 stdout line$' "$T/out"
  wait_for grep -q '^gen 2 stderr line$' "$T/err"
  assert_equal "$(status_get '[d["reload_in_progress"], [(g["generation"], g["state"]) for g in d["generations"]]]')" \
    '[true, [[2, "starting"], [1, "ready"]]]'
  # Generation 1's line is not generation 2's readiness.
  touch "$T/more.1"
  wait_for grep -q '^gen 1 still talking$' "$T/out"
  assert_equal "$(gen_state 2)" starting
  touch "$T/go.2"
  wait_for bg_done reload
  pid2=$(logged_pid 2)
  reload_result_is 0 "reloaded: generation 2 (pid $pid2) is serving"
  touch "$T/more.2"
  # Once ready, its output still passes through.
  wait_for grep -q '^gen 2 still talking$' "$T/out"
  run grep -c 'stderr line\|ready gen' "$T/out"
  assert_output 0
  grep -q '^ready gen 2$' "$T/err"
  wait_gone "$pid1"
}

@test "log: first start: a pattern not printed on the stream read ends baton with 102; a program exiting, its status" {
  app=$(py_child app <<'PY'
print("ready", flush=True)  # on stdout; readiness.stream is stderr
print("something else", file=sys.stderr, flush=True)
signal.pause()
PY
  )
  CFG_READINESS="{type: log, pattern: \"^ready\$\", stream: stderr, timeout: 1s}" rd_config "$PYTHON" "$app"
  run_split
  exits_with 102
  log_has 'generation 1 \(pid [0-9]+\) was not ready within 1s \(readiness.timeout\)'
  grep -qx 'ready' "$T/out"

  app=$(py_child exits <<'PY'
print("starting, then failing", flush=True)
sys.exit(3)
PY
  )
  CFG_READINESS="{type: log, pattern: \"^ready\$\", timeout: 10s}" rd_config "$PYTHON" "$app"
  run_split
  exits_with 3
  log_has 'generation 1 \(pid [0-9]+\) exited with status 3 before it was ready'
  grep -qx 'starting, then failing' "$T/out"
}

@test "log: a reload whose new generation never prints the pattern fails; the old generation keeps serving" {
  app=$(py_child app <<'PY'
if os.environ["BATON_GENERATION"] == "1":
    print("ready", flush=True)
else:
    print("not today", flush=True)
signal.pause()
PY
  )
  CFG_READINESS="{type: log, pattern: \"^ready\$\", timeout: 1s}" rd_config "$PYTHON" "$app"
  run_split
  wait_for sup_state_is running
  pid1=$(logged_pid 1)
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "the new generation 2 was not ready within 1s (readiness.timeout); generation 1 keeps serving"
  still_serving "$pid1"
  grep -qx 'not today' "$T/out"
}

@test "log: a stdout nobody reads does not freeze baton: status and SIGTERM are still answered" {
  # baton's stdout is a FIFO that is held open but never read: once the pipe is full, passing the program's output
  # on cannot go on, but supervising must (the control socket, signals, reaping).
  mkfifo "$T/fifo"
  sleep 120 <>"$T/fifo" &
  track_pid $!
  app=$(py_child app <<'PY'
print("ready", flush=True)
sys.stdout.write("x" * 1000000)
sys.stdout.flush()
signal.pause()
PY
  )
  CFG_READINESS="{type: log, pattern: \"^ready\$\", timeout: 10s}" rd_config "$PYTHON" "$app"
  BATON_LOG="$T/err"
  "$BATON" run -c "$CFG" >"$T/fifo" 2>"$T/err" &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_log 'generation 1 is ready'
  # The FIFO fills up (64 KiB; the program writes 1 MB): from then on nothing more can be written to it.
  wait_for "$PYTHON" -c '
import fcntl, os, struct, sys, termios
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
queued = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
sys.exit(queued < 49152)' "$T/fifo"
  run timeout 3 "$BATON" status --control "$CTL"
  assert_success
  assert_output --partial 'running'
  WAIT_SECONDS=5 baton_stop
  assert_equal "$BATON_STATUS" 0
}

# ---- pidfile ----

# Writes $T/daemon.py and $T/launcher.sh: the launcher starts the daemon in the background (so that it is reparented
# to baton) and exits 0. The daemon says its pid in $T/daemon.GEN, waits for $T/go.GEN, then writes
# its pid to $T/app.pid (atomically); SIGTERM makes it note $T/term.PID and exit 0. With DAEMON_SETSID=1 it leaves
# the launcher's process group and session, as a real daemon does.
write_daemon() {
  py_child daemon >/dev/null <<'PY'
T, g = os.environ["T"], os.environ["BATON_GENERATION"]
if os.environ.get("DAEMON_SETSID") == "1":
    os.setsid()
def term(*_):
    open("%s/term.%d" % (T, os.getpid()), "w").close()
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
with open(T + "/daemon.tmp." + g, "w") as f:
    f.write(str(os.getpid()))
os.rename(T + "/daemon.tmp." + g, T + "/daemon." + g)
wait_file(T + "/go." + g)
with open(T + "/app.pid.tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(T + "/app.pid.tmp", T + "/app.pid")
while True:
    signal.pause()
PY
  sh_child launcher >/dev/null <<SH
( "$PYTHON" "$T/daemon.py" & )
exit 0
SH
}

@test "pidfile: ready once the file names the program itself, not before" {
  app=$(py_child app <<'PY'
wait_file(os.environ["T"] + "/go")
with open(os.environ["T"] + "/app.pid", "w") as f:
    f.write("  %d \n" % os.getpid())
signal.pause()
PY
  )
  CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 20s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_log 'generation 1 started'
  pid1=$(logged_pid 1)
  assert_equal "$(sup_state)" starting
  touch "$T/go"
  wait_for sup_state_is running
  log_has "generation 1 \(pid $pid1\): $T/app.pid names pid $pid1"
  run log_has 'following pid'
  assert_failure
  assert_equal "$(current_gen)" "1 $pid1"
}

@test "pidfile: a daemonizing launcher exits 0, its daemon is followed; stop signals the daemon and baton exits 0" {
  write_daemon
  CFG_ENV="DAEMON_SETSID: \"1\"" \
    CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 20s}" \
    rd_config /bin/sh "$T/launcher.sh"
  baton_start run -c "$CFG"
  wait_log 'generation 1: pid [0-9]+ exited with status 0 before .* named a live process; waiting for its daemon'
  wait_for test -s "$T/daemon.1"
  daemon=$(cat "$T/daemon.1")
  track_pid "$daemon"
  # The launcher is gone and the daemon has not written its pid file: starting, with no process of its own yet.
  assert_equal "$(status_get '[d["state"], [(g["generation"], g["pid"], g["state"]) for g in d["generations"]]]')" \
    '["starting", [[1, 0, "starting"]]]'

  touch "$T/go.1"
  wait_for sup_state_is running
  log_has "generation 1: following pid $daemon from $T/app.pid \(the program daemonized\)"
  assert_equal "$(current_gen)" "1 $daemon"

  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ -e "$T/term.$daemon" ]]
  pid_gone "$daemon"
}

@test "pidfile: the followed daemon's crash is a crash: restart.policy restarts the program" {
  write_daemon
  touch "$T/go.1" "$T/go.2"
  CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 20s}" \
    CFG_EXTRA="restart: {policy: on-failure, delay: 100ms}" rd_config /bin/sh "$T/launcher.sh"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  daemon1=$(cat "$T/daemon.1")
  track_pid "$daemon1"
  assert_equal "$(current_gen)" "1 $daemon1"

  kill -KILL "$daemon1"
  wait_log "generation 1 \(pid $daemon1\) was killed by SIGKILL; restarting"
  wait_for eval '[[ "$(current_gen)" == "2 $(cat "$T/daemon.2" 2>/dev/null)" ]]'
  daemon2=$(cat "$T/daemon.2")
  track_pid "$daemon2"
  wait_for sup_state_is running
  assert_equal "$(status_get 'd["restarts"]')" 1
  [[ "$daemon2" != "$daemon1" ]]

  # A clean exit of the daemon under on-failure: baton exits with it.
  kill -TERM "$daemon2"
  wait_log "generation 2 \(pid $daemon2\) exited with status 0; restart.policy is on-failure, exiting"
  exits_with 0
}

@test "pidfile: a reload is not ready while the pid file names the old generation's daemon; a timed-out one fails" {
  write_daemon
  touch "$T/go.1"
  CFG_ENV="DAEMON_SETSID: \"1\"" \
    CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 1s}" \
    rd_config /bin/sh "$T/launcher.sh"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  daemon1=$(cat "$T/daemon.1")
  track_pid "$daemon1"

  # Generation 2's daemon never writes the file: it names generation 1's daemon (alive, baton's child) all along.
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "the new generation 2 was not ready within 1s (readiness.timeout); generation 1 keeps serving"
  still_serving "$daemon1"
  assert_equal "$(tr -d ' \n' <"$T/app.pid")" "$daemon1"
  wait_for test -s "$T/daemon.2"
  track_pid "$(cat "$T/daemon.2")"

  CFG_ENV="DAEMON_SETSID: \"1\"" \
    CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 20s}" \
    rd_config /bin/sh "$T/launcher.sh"
  bg_run reload timeout 30 "$BATON" reload --control "$CTL"
  wait_log 'generation 3: pid [0-9]+ exited with status 0 before .* waiting for its daemon'
  wait_for test -s "$T/daemon.3"
  daemon3=$(cat "$T/daemon.3")
  track_pid "$daemon3"
  # A window of several pid file checks (every 50 ms): the old daemon's pid is not generation 3's readiness.
  holds_for 0.5 eval '[[ "$(gen_state 3)" == starting ]]'
  assert_equal "$(current_gen)" "1 $daemon1"

  touch "$T/go.3"
  wait_for bg_done reload
  reload_result_is 0 "reloaded: generation 3 (pid $daemon3) is serving"
  assert_equal "$(current_gen)" "3 $daemon3"
  # The old daemon is stopped with stop.signal.
  wait_for test -e "$T/term.$daemon1"
  wait_gone "$daemon1"
}

@test "pidfile: first start: a pid file naming a dead pid or a stranger: 102; a failing launcher: its status" {
  # A dead pid, from a launcher that exits 0.
  launcher=$(sh_child dead <<'SH'
true &
dead=$!
wait
echo "$dead" >"$T/app.pid"
exit 0
SH
  )
  CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 1s}"
  rd_config /bin/sh "$launcher"
  baton_start run -c "$CFG"
  exits_with 102
  log_has 'generation 1 \(pid 0\) was not ready within 1s \(readiness.timeout\)'
  log_has 'generation 1 is told to stop; it has no process left'

  # A live process that is neither the program nor baton's orphan.
  sleep 60 &
  stranger=$!
  track_pid "$stranger"
  echo "$stranger" >"$T/app.pid"
  app=$(py_child app <<'PY'
signal.pause()
PY
  )
  rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  exits_with 102
  log_has 'generation 1 \(pid [0-9]+\) was not ready within 1s \(readiness.timeout\)'
  kill -0 "$stranger"
  run log_has "names pid $stranger"
  assert_failure

  rd_config /bin/sh -c "exit 5"
  baton_start run -c "$CFG"
  exits_with 5
  log_has 'generation 1 \(pid [0-9]+\) exited with status 5 before it was ready'
}

@test "pidfile: a generation given up while it waits for its daemon takes the daemon's process group along" {
  # The launcher exits 0; its daemon stays in the launcher's process group and never writes the pid file. When the
  # readiness timeout gives the generation up, baton kills the group as it does for any generation: nothing of the
  # program may outlive baton's exit 102.
  write_daemon
  CFG_READINESS="{type: pidfile, pid-file: \"$T/app.pid\", interval: 50ms, timeout: 1s}" \
    rd_config /bin/sh "$T/launcher.sh"
  baton_start run -c "$CFG"
  wait_for test -s "$T/daemon.1"
  daemon=$(cat "$T/daemon.1")
  track_pid "$daemon"
  exits_with 102
  # SIGKILL goes before baton exits: a short deadline.
  WAIT_SECONDS=2 wait_gone "$daemon"
}

# ---- delay and none ----

@test "delay: ready once readiness.delay has passed, not before; a reload takes the delay too" {
  app=$(py_child app <<'PY'
signal.pause()
PY
  )
  CFG_READINESS="{type: delay, delay: 1500ms, timeout: 20s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_log 'generation 1 started'
  assert_equal "$(sup_state)" starting
  assert_equal "$(gen_state 1)" starting
  wait_for sup_state_is running
  log_has 'generation 1 \(pid [0-9]+\): readiness.delay has passed'
  ms=$(sed -n 's/.*generation 1 is ready (\([0-9]*\) ms after start).*/\1/p' "$BATON_LOG")
  ((ms >= 1500 && ms < 6000))

  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  assert_output --regexp \
    'reloaded: generation 2 \(pid [0-9]+\) is serving, ready (1[5-9][0-9]{2}|[2-5][0-9]{3}) ms after start'
  (($(status_get 'd["last_reload"]["duration_ms"]') >= 1500))
}

@test "delay: longer than readiness.timeout ends the first start with 102; a program gone before it fails a reload" {
  CFG_READINESS="{type: delay, delay: 5s, timeout: 500ms}" rd_config /bin/sleep 60
  baton_start run -c "$CFG"
  exits_with 102
  log_has 'generation 1 \(pid [0-9]+\) was not ready within 500ms \(readiness.timeout\)'
  run log_has 'readiness.delay has passed'
  assert_failure

  app=$(py_child app <<'PY'
if os.environ["BATON_GENERATION"] == "2":
    sys.exit(6)
signal.pause()
PY
  )
  CFG_READINESS="{type: delay, delay: 300ms, timeout: 10s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  pid1=$(logged_pid 1)
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "the new generation 2 exited with status 6 before it was ready; generation 1 keeps serving"
  still_serving "$pid1"
}

@test "none: ready at once, whatever the readiness timeout; READY=1 is ignored" {
  app=$(py_child app <<'PY'
wait_file(os.environ["T"] + "/notify." + os.environ["BATON_GENERATION"])
notify("READY=1")
open(os.environ["T"] + "/sent." + os.environ["BATON_GENERATION"], "w").close()
signal.pause()
PY
  )
  CFG_READINESS="{type: none, timeout: 1s}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG" --log-level debug
  wait_for sup_state_is running
  log_has 'generation 1 \(pid [0-9]+\): readiness.type is none'
  ms=$(sed -n 's/.*generation 1 is ready (\([0-9]*\) ms after start).*/\1/p' "$BATON_LOG")
  ((ms < 1000))
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  assert_output --partial "reloaded: generation 2"
  touch "$T/notify.2"
  wait_log 'generation 2 sent READY=1, ignored: readiness.type is none'
  run log_has 'sent READY=1 again'
  assert_failure
  assert_equal "$(current_gen)" "2 $(logged_pid 2)"
}

@test "reload.strategy signal with a type other than notify completes once the signal is delivered" {
  app=$(py_child app <<'PY'
T = os.environ["T"]
n = [0]
def hup(*_):
    n[0] += 1
    open("%s/hup.%d" % (T, n[0]), "w").close()
signal.signal(signal.SIGHUP, hup)
open(T + "/ok", "w").close()  # ready (for the probe) once SIGHUP is handled
while True:
    signal.pause()
PY
  )
  CFG_READINESS="{type: exec, command: [/bin/sh, -c, \"test -e \$T/ok\"], interval: 50ms, timeout: 20s}" \
    CFG_EXTRA="reload: {strategy: signal}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  pid1=$(logged_pid 1)
  # The probe would fail now: a signal reload runs none.
  rm "$T/ok"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  assert_output --partial "reloaded: generation 1 (pid $pid1) reloaded itself"
  wait_for test -e "$T/hup.1"
  assert_equal "$(current_gen)" "1 $pid1"
  assert_equal "$(sup_state)" running
}

# ---- program.stdin, program.compat ----

@test "program.stdin: the listener is also the program's fd 0 (inetd wait)" {
  app=$(py_child app <<'PY'
s = socket.socket(fileno=0)
same = os.fstat(0).st_ino == os.fstat(3).st_ino
with open(os.environ["T"] + "/fd0", "w") as f:
    f.write("%s %s %s\n" % (s.type == socket.SOCK_STREAM, s.getsockname()[1], same))
while True:
    conn, _ = s.accept()
    conn.sendall(b"answered from fd 0\n")
    conn.close()
PY
  )
  PROGRAM_EXTRA="  stdin: http" CFG_READINESS="{type: none}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for test -s "$T/fd0"
  assert_equal "$(cat "$T/fd0")" "True $PORT True"
  run timeout 10 socat -t 5 - "TCP4:127.0.0.1:$PORT" </dev/null
  assert_success
  assert_output "answered from fd 0"
}

@test "program.stdin naming no listener is refused, also when the listeners come from --listen" {
  PROGRAM_EXTRA="  stdin: htp" CFG_READINESS="{type: none}" rd_config /bin/true
  run timeout 10 "$BATON" run -c "$CFG"
  assert_failure 101
  assert_output --partial "key 'program.stdin': names no listener: 'htp'"

  printf 'program:\n  stdin: web\n' >"$CFG"
  run timeout 10 "$BATON" run -c "$CFG" -l "http=tcp://127.0.0.1:$PORT" -- /bin/true
  assert_failure 101
  assert_output --partial "key 'program.stdin': names no listener: 'web'"
}

@test "program.compat: SERVER_STARTER_PORT, SERVER_STARTER_GENERATION and EINHORN_FD_* in the program's environment" {
  app=$(py_child app <<'PY'
g = os.environ["BATON_GENERATION"]
keys = ["SERVER_STARTER_PORT", "SERVER_STARTER_GENERATION", "EINHORN_FD_COUNT", "EINHORN_FD_0", "EINHORN_FD_1",
        "EINHORN_FD_2"]
names = []
for fd in (3, 4):
    s = socket.socket(fileno=fd)
    names.append(str(s.getsockname()))
    s.detach()
with open(os.environ["T"] + "/env.tmp", "w") as f:
    for k in keys:
        f.write("%s=%s\n" % (k, os.environ.get(k, "(unset)")))
    f.write("sockets=%s\n" % " ".join(names))
os.rename(os.environ["T"] + "/env.tmp", os.environ["T"] + "/env." + g)
signal.pause()
PY
  )
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: sock, address: \"unix:$T/app.sock\"}" \
    PROGRAM_EXTRA="  compat: [server-starter, einhorn]" CFG_READINESS="{type: none}" rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for test -s "$T/env.1"
  run cat "$T/env.1"
  assert_output "SERVER_STARTER_PORT=127.0.0.1:$PORT=3;$T/app.sock=4
SERVER_STARTER_GENERATION=1
EINHORN_FD_COUNT=2
EINHORN_FD_0=3
EINHORN_FD_1=4
EINHORN_FD_2=(unset)
sockets=('127.0.0.1', $PORT) $T/app.sock"

  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for test -s "$T/env.2"
  assert_equal "$(sed -n 's/^SERVER_STARTER_GENERATION=//p' "$T/env.2")" 2
}

@test "program.compat server-starter refuses a listener it cannot write (udp)" {
  CFG_LISTENERS="  - {name: dns, address: \"udp://127.0.0.1:$PORT\"}" PROGRAM_EXTRA="  compat: [server-starter]" \
    CFG_READINESS="{type: none}" rd_config /bin/true
  run timeout 10 "$BATON" run -c "$CFG"
  assert_failure 101
  assert_output --partial \
    "key 'program.compat': listener 'dns' (udp://127.0.0.1:$PORT) cannot be written in SERVER_STARTER_PORT"
}

# ---- program.preload, stop.drain ----

# Prints the child's LD_PRELOAD and BATON_DRAIN_SIGNAL to $T/env.GEN.
write_env_child() {
  py_child env >/dev/null <<'PY'
g = os.environ["BATON_GENERATION"]
with open(os.environ["T"] + "/env.tmp", "w") as f:
    for k in ("LD_PRELOAD", "BATON_DRAIN_SIGNAL"):
        f.write("%s=%s\n" % (k, os.environ.get(k, "(unset)")))
os.rename(os.environ["T"] + "/env.tmp", os.environ["T"] + "/env." + g)
signal.pause()
PY
}

@test "program.preload: LD_PRELOAD has the library first, then program.environment's; stop.drain: BATON_DRAIN_SIGNAL" {
  cp /lib/x86_64-linux-gnu/libdl.so.2 "$SHIM"
  cp /lib/x86_64-linux-gnu/libdl.so.2 "$T/libother.so"
  write_env_child
  export BATON_PRELOAD_LIBRARY="$SHIM"
  CFG_ENV="LD_PRELOAD: \"$T/libother.so\"" PROGRAM_EXTRA="  preload: true" CFG_READINESS="{type: none}" \
    rd_config "$PYTHON" "$T/env.py"
  baton_start run -c "$CFG"
  wait_for test -s "$T/env.1"
  run cat "$T/env.1"
  assert_output "LD_PRELOAD=$SHIM:$T/libother.so
BATON_DRAIN_SIGNAL=(unset)"
  # A dynamic program: no warning.
  run log_has 'program.preload:'
  assert_failure
  baton_stop

  rm "$T/env.1"
  PROGRAM_EXTRA="  preload: true" CFG_READINESS="{type: none}" CFG_STOP="{timeout: 2s, drain: 1s}" \
    rd_config "$PYTHON" "$T/env.py"
  baton_start run -c "$CFG"
  wait_for test -s "$T/env.1"
  run cat "$T/env.1"
  # SIGURG (ignored by default, so a process without the shim's handler is not killed by it).
  assert_output "LD_PRELOAD=$SHIM
BATON_DRAIN_SIGNAL=$("$PYTHON" -c 'import signal; print(int(signal.SIGURG))')"
}

@test "program.preload: a missing library fails the start with 102 and names its path" {
  PROGRAM_EXTRA="  preload: true" CFG_READINESS="{type: none}" rd_config /bin/sh -c "touch \$T/started"
  BATON_PRELOAD_LIBRARY="$T/nonexistent/libbaton-preload.so" baton_start run -c "$CFG"
  exits_with 102
  log_has "Failed to start the program: program.preload: $T/nonexistent/libbaton-preload.so: No such file or directory"
  [[ ! -e "$T/started" ]]

  # Without BATON_PRELOAD_LIBRARY: the installed path, named the same way when it is not installed.
  installed=$(grep -ao '/[[:graph:]]*/baton/libbaton-preload\.so' "$BATON" | head -n1)
  [[ -n "$installed" ]]
  if [[ -e "$installed" ]]; then
    echo "# $installed is installed: the message for a missing installed library is not checked" >&3
  else
    env -u BATON_PRELOAD_LIBRARY "$BATON" run -c "$CFG" >"$T/log2" 2>&1 && status=0 || status=$?
    assert_equal "$status" 102
    grep -qF "program.preload: $installed: No such file or directory" "$T/log2"
  fi
}

@test "program.preload: a statically linked program gets a warning in the log, and still runs" {
  [[ -n "${STATIC_PROGRAM:-}" ]] || skip "no STATIC_PROGRAM: tests/meson.build builds it with a static libc (libc6-dev)"
  cp /lib/x86_64-linux-gnu/libdl.so.2 "$SHIM"
  PROGRAM_EXTRA="  preload: true" CFG_READINESS="{type: none}" rd_config "$STATIC_PROGRAM"
  BATON_PRELOAD_LIBRARY="$SHIM" baton_start run -c "$CFG"
  wait_for sup_state_is running
  log_has "warning: program.preload: $STATIC_PROGRAM: it is statically linked, so nothing loads LD_PRELOAD; it runs \
unshimmed"
  kill -0 "$(logged_pid 1)"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "program.preload: the static-binary check finds the program on program.environment's PATH, as exec does" {
  [[ -n "${STATIC_PROGRAM:-}" ]] || skip "no STATIC_PROGRAM: tests/meson.build builds it with a static libc (libc6-dev)"
  cp /lib/x86_64-linux-gnu/libdl.so.2 "$SHIM"
  mkdir "$T/bin"
  cp "$STATIC_PROGRAM" "$T/bin/static-app"
  # baton's own PATH does not have $T/bin; the program's does, and exec finds the program there.
  CFG_ENV="PATH: \"$T/bin:/usr/bin:/bin\"" PROGRAM_EXTRA="  preload: true" CFG_READINESS="{type: none}" \
    rd_config static-app
  BATON_PRELOAD_LIBRARY="$SHIM" baton_start run -c "$CFG"
  wait_for sup_state_is running
  log_has "warning: program.preload: static-app: it is statically linked, so nothing loads LD_PRELOAD"
}

@test "stop.drain: a replaced program catching the drain signal drains, then is stopped; one that does not, at once" {
  cp /lib/x86_64-linux-gnu/libdl.so.2 "$SHIM"
  app=$(py_child app <<'PY'
T, g = os.environ["T"], os.environ["BATON_GENERATION"]
def note(what):
    def handler(*_):
        open("%s/%s.%s" % (T, what, g), "w").close()
        if what == "term":
            sys.exit(0)
    return handler
if g == "1":
    signal.signal(int(os.environ["BATON_DRAIN_SIGNAL"]), note("drain"))
signal.signal(signal.SIGTERM, note("term"))
open("%s/up.%s" % (T, g), "w").close()
while True:
    signal.pause()
PY
  )
  export BATON_PRELOAD_LIBRARY="$SHIM"
  PROGRAM_EXTRA="  preload: true" CFG_STOP="{timeout: 5s, drain: 2s}" \
    CFG_READINESS="{type: exec, command: [/bin/sh, -c, \"test -e \$T/up.\$BATON_GENERATION\"], interval: 50ms}" \
    rd_config "$PYTHON" "$app"
  baton_start run -c "$CFG"
  wait_for sup_state_is running
  pid1=$(logged_pid 1)

  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for test -e "$T/drain.1"
  log_has "draining generation 1 \(pid $pid1\) for 2s"
  assert_equal "$(gen_state 1)" draining
  [[ ! -e "$T/term.1" ]]
  wait_for test -e "$T/term.1"
  wait_gone "$pid1"
  # It drained for stop.drain before stop.signal.
  "$PYTHON" -c 'import os, sys; d = os.stat(sys.argv[2]).st_mtime - os.stat(sys.argv[1]).st_mtime
sys.exit(not 1.9 <= d < 6)' "$T/drain.1" "$T/term.1"

  # Generation 2 has no handler for the drain signal (no shim): it is stopped right away, not killed by it.
  pid2=$(logged_pid 2)
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for test -e "$T/term.2"
  log_has "generation 2 \(pid $pid2\) does not catch the drain signal \(no shim\?\): stopping it now"
  wait_log "generation 2 \(pid $pid2\) exited with status 0"
}
