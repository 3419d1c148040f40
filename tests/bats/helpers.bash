# Shared helpers for baton's integration tests. Every wait has a deadline (WAIT_SECONDS, default 30) and waits for
# an event (a file, a log line, a port answering, a process ending); nothing sleeps for a fixed time and hopes.

# wait_for, WAIT_SECONDS and PYTHON come from tests/lib/common.bash, shared with tests/systemd.
load "${BATS_TEST_DIRNAME}/../lib/common.bash"

: "${BATON:?BATON must point at the built baton binary (meson test sets it)}"

# A TCP port on 127.0.0.1 that is free right now (the kernel picks it).
free_port() { pick_free_port python3; }

# A port the kernel gives for bind(0), never one this test was given before (two calls in a row can get the same
# one: each socket is closed at once): the ports handed out are kept in $BATS_TEST_TMPDIR/.ports.
pick_free_port() {
  "$1" -c 'import os, socket, sys
used = os.path.join(sys.argv[1], ".ports")
taken = set(open(used).read().split()) if os.path.exists(used) else set()
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = str(s.getsockname()[1]); s.close()
    if port not in taken:
        break
with open(used, "a") as f:
    f.write(port + "\n")
print(port)' "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}"
}

# Starts baton in the background: baton_start ARGS... (the arguments after "baton"). Sets BATON_PID; its stderr and
# stdout go to $BATON_LOG.
baton_start() {
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  "$BATON" "$@" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  echo "$BATON_PID" >>"$BATS_TEST_TMPDIR/pids"
}

# Waits until baton has exited and sets BATON_STATUS to its exit status.
baton_wait_exit() {
  local deadline=$((SECONDS + WAIT_SECONDS))
  while kill -0 "$BATON_PID" 2>/dev/null; do
    # A zombie is exited too: wait reaps it below.
    [[ "$(ps -o stat= -p "$BATON_PID" 2>/dev/null)" == Z* ]] && break
    if ((SECONDS >= deadline)); then
      echo "baton (pid $BATON_PID) did not exit within ${WAIT_SECONDS}s" >&2
      return 1
    fi
    sleep 0.02
  done
  BATON_STATUS=0
  wait "$BATON_PID" || BATON_STATUS=$?
}

# Sends SIGTERM to baton and waits for it to exit (BATON_STATUS).
baton_stop() {
  kill -TERM "$BATON_PID"
  baton_wait_exit
}

log_has() { grep -qE -- "$1" "$BATON_LOG"; }
wait_log() { wait_for log_has "$1"; }

http_get() { curl -fsS --max-time 5 "http://127.0.0.1:$1/"; }
http_ok() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$1/"; }
wait_http() { wait_for http_ok "$1"; }

# The value of KEY in a probe report file (tests/programs/probe.c writes key=value lines).
report_get() {
  local file=$1 key=$2
  sed -n "s/^${key//./\\.}=//p" "$file" | head -n1
}

# Children of pid (direct).
children_of() { ps -o pid= --ppid "$1" | tr -d ' '; }

# Every test ends with nothing of its own left running: the processes it started (by PID) and their descendants.
teardown_processes() {
  local pid tree
  [[ -f "$BATS_TEST_TMPDIR/pids" ]] || return 0
  while read -r pid; do
    kill -0 "$pid" 2>/dev/null || continue
    # With what it started: a SIGKILL of baton alone leaves a program that ignores its parent-death signal
    # (stop.signal) running as init's orphan, for the rest of the suite.
    tree=$(stop_tree "$pid")
    # shellcheck disable=SC2086
    kill -KILL $tree 2>/dev/null || true
  done <"$BATS_TEST_TMPDIR/pids"
}

# SIGSTOPs pid and its descendants from the top down (a stopped process neither forks nor restarts what dies) and
# prints their pids (/proc/PID/task/*/children).
stop_tree() {
  local c
  kill -STOP "$1" 2>/dev/null || return 0
  echo "$1"
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do stop_tree "$c"; done
}

# A usage error: exit 100, a message naming WHAT, a pointer to --help, and nothing on stdout (after run
# --separate-stderr).
assert_usage_error() {
  echo "status $status, stdout: $output, stderr: $stderr"
  assert_equal "$status" 100
  assert_equal "$output" ""
  stderr_has "$1"
  stderr_has "baton --help"
}

# Remembers a pid for teardown.
track_pid() { echo "$1" >>"$BATS_TEST_TMPDIR/pids"; }

# For tests that run something as another user: that user must reach the test's directory and the binaries, whatever
# the checkout's path (a clone in /root is 0700 to others). Opens the test's temporary directory to others (bats
# makes it 0700) and points each variable named to a copy of its binary there: public_bins BATON BATON_DEMO
public_bins() {
  local var dir="$BATS_TEST_TMPDIR/bin"
  chmod o+x "$BATS_RUN_TMPDIR" "$BATS_RUN_TMPDIR/test" "$BATS_TEST_TMPDIR"
  mkdir -p "$dir"
  chmod 755 "$dir"
  for var in "$@"; do
    install -m 755 "${!var}" "$dir/${var,,}"
    printf -v "$var" '%s' "$dir/${var,,}"
  done
}

# ---- Generations, reloads and the control socket (reload.bats, restart.bats, control.bats) ----

# Per-test names: PORT (free), CFG (the config file), CTL (the control socket), all in $BATS_TEST_TMPDIR.
demo_setup() {
  PORT=$(free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  CTL="$BATS_TEST_TMPDIR/ctl.sock"
}

# Writes $CFG for any program: write_config COMMAND [ARG]... The listener "http" on $PORT (CFG_LISTENERS replaces
# it: YAML list items), CFG_PROGRAM (more lines under "program:", indented two spaces), readiness CFG_READINESS
# (default "{timeout: 10s}"), stop CFG_STOP ("{timeout: 2s}"), the control socket CFG_CONTROL (default $CTL; "" for
# none), and CFG_EXTRA (more top-level YAML, e.g. "reload: {strategy: restart}") when set.
write_config() {
  local arg cmd=""
  for arg in "$@"; do cmd+="${cmd:+, }\"$arg\""; done
  {
    echo "listeners:"
    if [[ -n "${CFG_LISTENERS:-}" ]]; then
      echo "$CFG_LISTENERS"
    else
      echo "  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}"
    fi
    echo "program:"
    echo "  command: [$cmd]"
    [[ -z "${CFG_PROGRAM:-}" ]] || echo "$CFG_PROGRAM"
    echo "readiness: ${CFG_READINESS:-"{timeout: 10s}"}"
    echo "stop: ${CFG_STOP:-"{timeout: 2s}"}"
    echo "control: {socket: \"${CFG_CONTROL-$CTL}\"}"
    [[ -z "${CFG_EXTRA:-}" ]] || echo "$CFG_EXTRA"
  } >"$CFG"
}

# Starts baton on $CFG (baton run -c $CFG ARG...) and waits until generation 1 answers on $PORT: start_baton [ARG]...
start_baton() {
  baton_start run -c "$CFG" "$@"
  wait_for generation_answers "$PORT" 1
}

# Writes $CFG for the demo program: demo_config [DEMO_ARG]... As write_config, with readiness "{timeout: 10s}" and
# stop "{timeout: 1s}" unless CFG_READINESS / CFG_STOP say otherwise.
demo_config() {
  CFG_READINESS="${CFG_READINESS:-"{timeout: 10s}"}" CFG_STOP="${CFG_STOP:-"{timeout: 1s}"}" \
    write_config "$BATON_DEMO" "$@"
}

# The demo's answer on port ("hello from baton-demo pid=N generation=G"), and its parts.
demo_answer() { curl -fsS --max-time 5 "http://127.0.0.1:$1/"; }
answer_pid() { demo_answer "$1" | sed -n 's/.* pid=\([0-9]*\) .*/\1/p'; }
answer_generation() { demo_answer "$1" | sed -n 's/.* generation=\([0-9]*\).*/\1/p'; }
# Succeeds when generation N answers on port: wait_for generation_answers PORT N
generation_answers() { [[ "$(answer_generation "$1")" == "$2" ]]; }

# A TCP connection to 127.0.0.1:PORT is established (the kernel accepted it; it may still wait in the backlog).
client_connected() { [[ -n "$(ss -Htn state established "( dport = :$1 )")" ]]; }

# Whether pid is gone: no such process, or a zombie (exited, not reaped yet by its parent).
pid_gone() {
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ -z "$stat" || "$stat" == Z* ]]
}
wait_gone() { wait_for pid_gone "$1"; }

# The pid baton logged for generation N ("generation N started (pid P)").
logged_pid() { sed -n "s/.*generation $1 started (pid \([0-9]*\)).*/\1/p" "$BATON_LOG" | head -n1; }

# `baton status --json` of the baton at $CTL, then one value of it: status_get 'd["state"]' (a Python expression on
# the parsed object d; lists print as JSON, booleans as true/false).
status_json() { timeout 10 "$BATON" status --control "$CTL" --json; }
status_get() {
  status_json | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (bool, list, dict)) or v is None else v)' "$1"
}

# The number of live (non-zombie) direct children of pid.
live_children() { ps -o stat= --ppid "$1" | awk '$1 !~ /^Z/' | wc -l; }

# Runs a command in the background, its stdout+stderr to NAME.out and its exit status to NAME.rc (in
# $BATS_TEST_TMPDIR): bg_run NAME COMMAND [ARG]... Then wait_for bg_done NAME, and read bg_rc NAME.
bg_run() {
  local name=$1
  shift
  # errexit (bats sets it) would end the subshell before it wrote a failure's status.
  ( rc=0; "$@" >"$BATS_TEST_TMPDIR/$name.out" 2>&1 || rc=$?; echo "$rc" >"$BATS_TEST_TMPDIR/$name.rc" ) &
  track_pid $!
}
bg_done() { [[ -s "$BATS_TEST_TMPDIR/$1.rc" ]]; }
bg_rc() { cat "$BATS_TEST_TMPDIR/$1.rc"; }
bg_out() { cat "$BATS_TEST_TMPDIR/$1.out"; }

# A client that connects, sends one GET and reads the whole answer, over and over, one connection at a time, until
# the file $BATS_TEST_TMPDIR/NAME.stop exists: client_loop_start NAME PORT. Each request prints one line to
# NAME.log: "ok GENERATION" or "fail WHY". Returns once generation 1 has answered it. Then client_loop_stop NAME waits
# for it to end.
client_loop_start() {
  local name=$1 port=$2
  "$PYTHON" "$TESTS_DIR/programs/client-loop.py" "$port" "$BATS_TEST_TMPDIR/$name.stop" demo \
    >"$BATS_TEST_TMPDIR/$name.log" 2>&1 &
  track_pid $!
  eval "CLIENT_LOOP_PID_$name=$!"
  wait_for client_loop_saw "$name" 1
}
client_loop_stop() {
  local name=$1 pid_var="CLIENT_LOOP_PID_$1"
  touch "$BATS_TEST_TMPDIR/$name.stop"
  wait_gone "${!pid_var}"
}

# ---- Notify relay, inherited sockets and lifecycle (notify.bats, inherit.bats, lifecycle.bats) ----

# Starts tests/programs/notify-recv.py as a stand-in for systemd's notify socket and waits until it listens. Sets
# UPSTREAM_SOCKET (give it to baton as NOTIFY_SOCKET) and UPSTREAM_OUT (one line per datagram, newlines as '|').
# upstream_start full: a systemd that does not read; its socket's queue is full (FILLER=n datagrams) until the test
# creates the file UPSTREAM_HOLD.
upstream_start() {
  local name=upstream hold=()
  if [[ ${1-} == full ]]; then
    name=upstream-full
    UPSTREAM_HOLD="$BATS_TEST_TMPDIR/upstream.hold"
    hold=("$UPSTREAM_HOLD")
  fi
  UPSTREAM_SOCKET="$BATS_TEST_TMPDIR/$name.sock"
  UPSTREAM_OUT="$BATS_TEST_TMPDIR/$name.out"
  "$PYTHON" "$TESTS_DIR/programs/notify-recv.py" "$UPSTREAM_SOCKET" "$UPSTREAM_OUT" "${hold[@]}" &
  track_pid $!
  # Killed by teardown: no "Killed" line from the shell for it.
  disown $!
  wait_for test -e "$UPSTREAM_OUT.ready"
}
# An upstream datagram holds the line KEY=VALUE (an extended regex for it): upstream_has 'STATUS=probe up'
upstream_has() { [[ -f "$UPSTREAM_OUT" ]] && grep -qE -- "(^|\|)($1)(\||\$)" "$UPSTREAM_OUT"; }
wait_upstream() { wait_for upstream_has "$1"; }
# The number of the first upstream datagram holding the line KEY=VALUE (regex), or nothing.
upstream_index() { grep -nE -- "(^|\|)($1)(\||\$)" "$UPSTREAM_OUT" 2>/dev/null | head -n1 | cut -d: -f1; }

# write_config without a control socket: program_config COMMAND [ARG]...
program_config() { CFG_CONTROL="" write_config "$@"; }

# Writes a python3 child program to $BATS_TEST_TMPDIR/NAME.py (its body from stdin) and prints its path. The body
# can call notify(MSG) (one datagram, str or bytes, from this very process to $NOTIFY_SOCKET) and wait_file(PATH)
# (waits up to 30 s for PATH to exist).
py_child() {
  local file="$BATS_TEST_TMPDIR/$1.py"
  {
    cat <<'PY'
import os, signal, socket, sys, time
def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg if isinstance(msg, bytes) else msg.encode(), addr)
def wait_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + path)
        time.sleep(0.02)
PY
    cat
  } >"$file"
  echo "$file"
}

# The probe's report (PROBE_OUT) exists: the probe writes it atomically (rename), so it is complete once it exists.
report_ready() { [[ -s "$1" ]]; }

# systemd-socket-activate from Debian's systemd package.
SOCKET_ACTIVATE=$(command -v systemd-socket-activate || echo /lib/systemd/systemd-socket-activate)

# Runs baton under systemd-socket-activate: baton_start_activated SA_OPTION... -- BATON_ARG... (write each listen
# address as "-l ADDR"). It binds the sockets, and on the first connection execs baton in its own place with
# LISTEN_FDS, so BATON_PID is baton's pid; the log is $BATON_LOG as with baton_start. It passes on only variables
# named with -E: PROBE_*, ASAN_*, UBSAN_* and LSAN_* go along. Returns once every address listens; then
# activate_tcp PORT or activate_unix PATH makes the first connection.
baton_start_activated() {
  local sa=() addrs=() v
  while (($#)) && [[ "$1" != "--" ]]; do
    [[ "$1" == "-l" ]] && addrs+=("$2")
    sa+=("$1")
    shift
  done
  shift
  for v in $(compgen -e); do
    [[ "$v" =~ ^(PROBE_|ASAN_|UBSAN_|LSAN_) ]] && sa+=(-E "$v")
  done
  BATON_LOG="$BATS_TEST_TMPDIR/baton.log"
  "$SOCKET_ACTIVATE" "${sa[@]}" "$BATON" "$@" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  for v in "${addrs[@]}"; do
    wait_log "Listening on ${v//./\\.} as [0-9]+"
  done
}
activate_tcp() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1"; }
activate_unix() {
  "$PYTHON" -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "$1"
}

# Something listens on TCP port 127.0.0.1:PORT.
port_listening() { [[ -n "$(ss -Htln "( sport = :$1 )")" ]]; }
# A process with this pid exists in any state (a zombie too).
pid_exists() { ps -p "$1" >/dev/null 2>&1; }

# ---- The probe child (cli.bats, config.bats, listeners.bats, child.bats) ----

# Per-test names: REPORT (the probe's report, exported as PROBE_OUT), CFG (the config file), PORT (free).
probe_setup() {
  REPORT="$BATS_TEST_TMPDIR/report"
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  PORT=$(probe_free_port)
  export PROBE_OUT="$REPORT"
}

# free_port through $PYTHON (the pyenv shim that "python3" may be costs most of a second).
probe_free_port() { pick_free_port "$PYTHON"; }

# Writes $CFG with the listeners LISTENERS_YAML (list items, "  - {...}"; "" for none) and the probe as the program:
# probe_config LISTENERS_YAML [ARG]... PROGRAM_EXTRA adds lines under "program:" (indented two spaces). No control
# socket (command-line-free tests must not touch /run/baton), a short stop timeout.
probe_config() {
  local listeners=$1 arg cmd="\"$PROBE\""
  shift
  for arg in "$@"; do cmd+=", \"$arg\""; done
  {
    [[ -z "$listeners" ]] || printf 'listeners:\n%s\n' "$listeners"
    echo "program:"
    echo "  command: [$cmd]"
    [[ -z "${PROGRAM_EXTRA:-}" ]] || echo "$PROGRAM_EXTRA"
    echo "readiness: {timeout: 5s}"
    echo "stop: {timeout: 2s}"
    echo 'control: {socket: ""}'
  } >"$CFG"
}

# The probe wrote its report (it renames it into place, so it is complete once it exists).
wait_report() { wait_for test -s "${1:-$REPORT}"; }
# One value of $REPORT: rep KEY
rep() { report_get "$REPORT" "$1"; }
# Starts baton (baton_start ARGS...) and waits for the probe's report; fails with baton's log if none comes.
probe_start() {
  baton_start "$@"
  wait_for probe_report_or_baton_gone
  [[ -s "$REPORT" ]] || { echo "no report from the probe; baton's log:" >&2; cat "$BATON_LOG" >&2; return 1; }
}
probe_report_or_baton_gone() { [[ -s "$REPORT" ]] || pid_gone "$BATON_PID"; }

# After `run --separate-stderr`: stderr contains STRING (literally).
stderr_has() { [[ "$stderr" == *"$1"* ]] || { echo "stderr lacks '$1'; it is: $stderr" >&2; return 1; }; }
# No probe report exists: no child was started.
assert_no_child() { [[ ! -e "$REPORT" ]] || { echo "a child was started: $(cat "$REPORT")" >&2; return 1; }; }

# The integer value of a socket option of fd FD in process PID, read on a copy taken with pidfd_getfd(2) (needs
# root or ptrace rights): sock_opt PID FD LEVEL NAME, e.g. sock_opt 1234 3 IPPROTO_TCP TCP_NODELAY.
sock_opt() {
  "$PYTHON" - "$@" <<'PY'
import ctypes, os, socket, sys
pid, fd, level, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_pidfd_getfd = 438  # the same number on every architecture
n = libc.syscall(SYS_pidfd_getfd, os.pidfd_open(pid), fd, 0)
if n < 0:
    raise OSError(ctypes.get_errno(), "pidfd_getfd")
s = socket.socket(fileno=n)
print(s.getsockopt(getattr(socket, level), getattr(socket, name)))
PY
}

# What a PROBE_ECHO=1 probe answers on a socat address ("probe PID"): echo_answer TCP4:127.0.0.1:8080
echo_answer() { timeout 10 socat -t 5 - "$1" </dev/null; }
