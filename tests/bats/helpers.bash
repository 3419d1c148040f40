# Shared helpers for baton's integration tests. Every wait has a deadline (WAIT_SECONDS, default 10) and waits for
# an event (a file, a log line, a port answering, a process ending); nothing sleeps for a fixed time and hopes.

bats_load_library bats-support
bats_load_library bats-assert

: "${BATON:?BATON must point at the built baton binary (meson test sets it)}"
: "${WAIT_SECONDS:=10}"

# Polls "$@" until it succeeds or the deadline passes (returns 1 then, naming what it waited for).
wait_for() {
  local deadline=$((SECONDS + WAIT_SECONDS)) i=0
  until "$@" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${WAIT_SECONDS}s waiting for: $*" >&2
      return 1
    fi
    # 10 ms steps for the first second, then 50 ms: quick when things are quick, cheap when they are not.
    if ((i++ < 100)); then sleep 0.01; else sleep 0.05; fi
  done
}

# A TCP port on 127.0.0.1 that is free right now (the kernel picks it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
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

# Every test ends with nothing of its own left running: the processes it started (by PID) and their process groups.
teardown_processes() {
  local pid
  [[ -f "$BATS_TEST_TMPDIR/pids" ]] || return 0
  while read -r pid; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -KILL "$pid" 2>/dev/null || true
  done <"$BATS_TEST_TMPDIR/pids"
}

# Remembers a pid for teardown.
track_pid() { echo "$1" >>"$BATS_TEST_TMPDIR/pids"; }
