#!/usr/bin/env bats
# The preload shim (src/preload/baton-preload.c) on its own, without baton: tests/programs/preload-harness.py binds
# the sockets and starts a program with them at fd 3, ..., LISTEN_FDS, NOTIFY_SOCKET and LD_PRELOAD, and logs what
# arrives on its notify socket. The program is tests/programs/preload-probe.c, a server that binds its own port and
# knows nothing of LISTEN_FDS (its "PROBE=..." markers land in the same log, in order with the shim's READY=1), and
# once the real python3 -m http.server.

bats_require_minimum_version 1.5.0
load 'helpers'

: "${BATON_PRELOAD_LIBRARY:?BATON_PRELOAD_LIBRARY must point at the built libbaton-preload.so (meson test sets it)}"
: "${PRELOAD_PROBE:?PRELOAD_PROBE must point at the built preload-probe (meson test sets it)}"

setup() {
  H="$BATS_TEST_TMPDIR/harness"
  PORT=$(probe_free_port)
}
teardown() {
  if [[ -z "${BATS_TEST_COMPLETED:-}" && -d "$H" ]]; then
    { echo "harness log:"; cat "$H/log"; echo "notify log:"; cat "$H/notify"; } 2>/dev/null | sed 's/^/# /' >&3
  fi
  teardown_processes
}

# Starts the harness: harness_start [HARNESS_OPTION]... -- COMMAND [ARG]... Returns once the instances run; PID1 is
# the first one's pid.
harness_start() {
  mkdir -p "$H"
  "$PYTHON" "$TESTS_DIR/programs/preload-harness.py" "$H" "$@" >"$H/log" 2>&1 &
  track_pid $!
  # Killed by teardown: no "Killed" line from the shell for it.
  disown $!
  wait_for test -e "$H/started"
  local _n pid
  while read -r _n pid; do track_pid "$pid"; done <"$H/pids"
  PID1=$(instance_pid 1)
}
instance_pid() { awk -v i="$1" '$1 == i { print $2 }' "$H/pids"; }
# The inode of the harness's listener N (0, 1, ...): what /proc/PID/fd/FD shows as socket:[INODE].
inherited_inode() { awk -v i="$1" '$1 == i { print $2 }' "$H/sockets"; }

# A datagram whose whole text matches the extended regex arrived: notified 'READY=1'
notified() { [[ -f "$H/notify" ]] && grep -qE -- "^[0-9]+ ($1)\$" "$H/notify"; }
# ... from this pid: notified_by PID REGEX
notified_by() { [[ -f "$H/notify" ]] && grep -qE -- "^$1 ($2)\$" "$H/notify"; }
# The line number of the first such datagram, and its sender.
line_of() { grep -nE -- "^[0-9]+ ($1)\$" "$H/notify" | head -n1 | cut -d: -f1; }
sender_of() { grep -E -- "^[0-9]+ ($1)\$" "$H/notify" | head -n1 | cut -d' ' -f1; }
# Instance N exited with status S.
exited() { [[ -f "$H/notify" ]] && grep -qx "exit $1 $2" "$H/notify"; }
wait_ready() { wait_for notified 'READY=1'; }
# READY=1 came after the probe announced its wait (the shim sends it from inside the wait call).
assert_ready_after_waiting() {
  local waiting ready
  waiting=$(line_of 'PROBE=waiting') ready=$(line_of 'READY=1')
  [[ -n "$waiting" && -n "$ready" && "$ready" -gt "$waiting" ]] ||
    { echo "READY=1 (line $ready) not after PROBE=waiting (line $waiting)" >&2; return 1; }
}

# The fds the probe PID bound, in --listen order (from its PROBE=listening marker).
probe_fds() { sed -n "s/^$1 PROBE=listening fds=//p" "$H/notify" | head -n1 | tr ',' ' '; }
probe_fd() { local fds; read -ra fds <<<"$(probe_fds "$1")"; echo "${fds[$2]}"; }
fd_inode() { readlink "/proc/$1/fd/$2" | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p'; }
# fd FD of PID is the harness's listener N: assert_mapped PID FD N
assert_mapped() {
  local ino
  ino=$(fd_inode "$1" "$2")
  [[ -n "$ino" && "$ino" == "$(inherited_inode "$3")" ]] ||
    { echo "fd $2 of $1 is socket [$ino], not the inherited [$(inherited_inode "$3")]" >&2; return 1; }
}
fd_not_inherited() { [[ "$(fd_inode "$1" "$2")" != "$(inherited_inode "${3:-0}")" ]]; }
# The open-file flags of fd FD of PID (octal, as /proc/PID/fdinfo shows them); and whether one bit is set.
fd_flags() { sed -n 's/^flags:[[:space:]]*//p' "/proc/$1/fdinfo/$2"; }
fd_flag_set() { (((8#$(fd_flags "$1" "$2")) & $3)); }
O_NONBLOCK=0x800
O_CLOEXEC=0x80000
# The backlog of the TCP listener on 127.0.0.1:PORT (ss shows it as Send-Q).
backlog() { ss -Hltn "( sport = :$1 )" | awk '{ print $3 }'; }
# Whether an epoll set of PID holds a registration of the socket with this inode (its fdinfo lists "ino:HEX").
epoll_holds() {
  local fd hex
  hex=$(printf '%x' "$2")
  for fd in /proc/"$1"/fd/*; do
    [[ "$(readlink "$fd")" == "anon_inode:[eventpoll]" ]] || continue
    grep -q "^tfd:.* ino:$hex " "/proc/$1/fdinfo/${fd##*/}" && return 0
  done
  return 1
}

# One answer from the server: ask tcp4 PORT | ask tcp6 PORT | ask udp4 PORT | ask unix PATH (@NAME: abstract)
ask() {
  "$PYTHON" - "$@" <<'PY'
import socket, sys
kind, where = sys.argv[1], sys.argv[2]
if kind == "unix":
    s, addr = socket.socket(socket.AF_UNIX), ("\0" + where[1:] if where.startswith("@") else where)
elif kind == "tcp6":
    s, addr = socket.socket(socket.AF_INET6), ("::1", int(where))
elif kind == "udp4":
    s, addr = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), ("127.0.0.1", int(where))
else:
    s, addr = socket.socket(), ("127.0.0.1", int(where))
s.settimeout(5)
if kind == "udp4":
    s.sendto(b"hello", addr)
    print(s.recv(100).decode().strip())
else:
    s.connect(addr)
    print(s.makefile().readline().strip())
PY
}

# The usual case: one TCP listener, the probe binds the same address and waits with MODE.
start_tcp() {
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT" "$@"
}
serves_with() {
  start_tcp --wait "$1"
  wait_ready
  assert_ready_after_waiting
  assert_equal "$(sender_of 'READY=1')" "$PID1"
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "a bind() to the inherited address gets the inherited socket, which then serves the program" {
  start_tcp
  wait_ready
  fd=$(probe_fd "$PID1" 0)
  assert_mapped "$PID1" "$fd" 0
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
  # Nobody else listens on the port: the program's own socket was replaced, not bound.
  assert_equal "$(ss -Hltn "( sport = :$PORT )" | wc -l)" 1
  # The program's socket had neither flag, and so has the mapped fd.
  run ! fd_flag_set "$PID1" "$fd" $O_NONBLOCK
  run ! fd_flag_set "$PID1" "$fd" $O_CLOEXEC
}

@test "the mapped fd keeps the program's FD_CLOEXEC and O_NONBLOCK" {
  start_tcp --nonblock --cloexec
  wait_ready
  fd=$(probe_fd "$PID1" 0)
  assert_mapped "$PID1" "$fd" 0
  fd_flag_set "$PID1" "$fd" $O_NONBLOCK
  fd_flag_set "$PID1" "$fd" $O_CLOEXEC
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "READY=1 comes only once the program waits for connections, not when it listens" {
  start_tcp --wait-file "$BATS_TEST_TMPDIR/go"
  wait_for notified 'PROBE=listening fds=[0-9]+'
  # Bound and listening, the probe now waits for the file before it polls.
  touch "$BATS_TEST_TMPDIR/go"
  wait_ready
  run cut -d' ' -f2- "$H/notify"
  assert_output "PROBE=listening fds=$(probe_fd "$PID1" 0)
PROBE=waiting
READY=1"
}

@test "waiting in poll() makes it ready" { serves_with poll; }
@test "waiting in ppoll() makes it ready" { serves_with ppoll; }
@test "waiting in select() makes it ready" { serves_with select; }
@test "waiting in pselect() makes it ready" { serves_with pselect; }
@test "waiting in epoll (epoll_ctl ADD with EPOLLIN) makes it ready" { serves_with epoll; }
@test "waiting in accept() makes it ready" { serves_with accept; }
@test "waiting in accept4() makes it ready" { serves_with accept4; }

@test "listen() on the inherited socket, twice, returns 0 and keeps baton's backlog" {
  start_tcp --listen-twice
  wait_ready
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  # The harness listens with 77; the probe asks for 5, then 6.
  assert_equal "$(backlog "$PORT")" 77
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "close and bind again: the new socket is mapped too" {
  start_tcp --rebind
  wait_ready
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "SO_REUSEPORT and binding the same address twice: each socket is a dup of the one inherited socket" {
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- \
    "$PRELOAD_PROBE" --reuseport --listen "tcp4:127.0.0.1:$PORT" --listen "tcp4:127.0.0.1:$PORT"
  wait_ready
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_mapped "$PID1" "$(probe_fd "$PID1" 1)" 0
  assert_equal "$(ss -Hltn "( sport = :$PORT )" | wc -l)" 1
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "another address is bound for real, and does not hold READY back" {
  PORT2=$(probe_free_port)
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- \
    "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT" --listen "tcp4:127.0.0.1:$PORT2"
  wait_ready
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  ino=$(fd_inode "$PID1" "$(probe_fd "$PID1" 1)")
  [[ -n "$ino" && "$ino" != "$(inherited_inode 0)" ]]
  # Its own socket, with its own backlog.
  assert_equal "$(backlog "$PORT2")" 5
  assert_equal "$(ask tcp4 "$PORT2")" "pid=$PID1 gen=1"
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "matching is exact: 0.0.0.0 is not the inherited 127.0.0.1, the real bind() fails" {
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- "$PRELOAD_PROBE" --listen "tcp4:0.0.0.0:$PORT"
  wait_for exited 1 3
  grep -q "bind tcp4:0.0.0.0:$PORT: Address already in use" "$H/log"
  run ! notified 'READY=1'
}

@test "a UDP socket on the port of an inherited TCP socket is not mapped" {
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- "$PRELOAD_PROBE" --listen "udp4:127.0.0.1:$PORT"
  wait_for notified 'PROBE=waiting'
  ino=$(fd_inode "$PID1" "$(probe_fd "$PID1" 0)")
  [[ -n "$ino" && "$ino" != "$(inherited_inode 0)" ]]
  assert_equal "$(ask udp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "IPv6: [::1] is mapped" {
  "$PYTHON" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' ||
    skip "no IPv6 loopback on this machine"
  PORT=$("$PYTHON" -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])')
  harness_start --listen "tcp6:[::1]:$PORT" -- "$PRELOAD_PROBE" --listen "tcp6:[::1]:$PORT"
  wait_ready
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask tcp6 "$PORT")" "pid=$PID1 gen=1"
}

@test "a unix socket: the program's unlink() of its path leaves baton's file; other paths are unlinked for real" {
  sock="$BATS_TEST_TMPDIR/s.sock" other="$BATS_TEST_TMPDIR/other.sock"
  touch "$other"
  harness_start --listen "unix:$sock" -- "$PRELOAD_PROBE" --unlink --listen "unix:$sock" --listen "unix:$other"
  wait_ready
  [[ -S "$sock" ]]
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask unix "$sock")" "pid=$PID1 gen=1"
  # The stale regular file was removed and the program's own socket bound in its place.
  [[ -S "$other" ]]
  ino=$(fd_inode "$PID1" "$(probe_fd "$PID1" 1)")
  [[ -n "$ino" && "$ino" != "$(inherited_inode 0)" ]]
  assert_equal "$(ask unix "$other")" "pid=$PID1 gen=1"
}

@test "an abstract unix socket is mapped" {
  name="@baton-preload-test-$$-$PORT"
  harness_start --listen "unix:$name" -- "$PRELOAD_PROBE" --listen "unix:$name"
  wait_ready
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask unix "$name")" "pid=$PID1 gen=1"
}

@test "UDP: bind() maps the datagram socket, poll() makes it ready" {
  harness_start --listen "udp4:127.0.0.1:$PORT" -- "$PRELOAD_PROBE" --listen "udp4:127.0.0.1:$PORT"
  wait_ready
  assert_ready_after_waiting
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask udp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "UDP: a blocking recvfrom() makes it ready" {
  harness_start --listen "udp4:127.0.0.1:$PORT" -- "$PRELOAD_PROBE" --listen "udp4:127.0.0.1:$PORT" --wait recv
  wait_ready
  assert_ready_after_waiting
  assert_equal "$(ask udp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "two listeners: READY=1 only once both are waited on" {
  PORT2=$(probe_free_port)
  harness_start --listen "tcp4:127.0.0.1:$PORT" --listen "tcp4:127.0.0.1:$PORT2" -- \
    "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT" --listen "tcp4:127.0.0.1:$PORT2" --first-alone
  wait_ready
  # The probe polled the first socket alone, said so, then waited on both.
  first=$(line_of 'PROBE=waited-first') ready=$(line_of 'READY=1')
  [[ -n "$first" && "$ready" -gt "$first" ]]
  assert_ready_after_waiting
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_mapped "$PID1" "$(probe_fd "$PID1" 1)" 1
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
  assert_equal "$(ask tcp4 "$PORT2")" "pid=$PID1 gen=1"
}

@test "forked workers inherit the mapped socket; READY=1 comes from a worker that waits" {
  start_tcp --workers 2
  wait_ready
  sender=$(sender_of 'READY=1')
  [[ "$sender" != "$PID1" ]]
  assert_equal "$(ps -o ppid= -p "$sender" | tr -d ' ')" "$PID1"
  fd=$(probe_fd "$PID1" 0)
  for w in $(children_of "$PID1"); do assert_mapped "$w" "$fd" 0; done
  answer=$(ask tcp4 "$PORT")
  [[ "$answer" =~ ^pid=([0-9]+)\ gen=1$ ]]
  assert_equal "$(ps -o ppid= -p "${BASH_REMATCH[1]}" | tr -d ' ')" "$PID1"
}

@test "through a wrapper shell that forks the program: LISTEN_PID does not have to match" {
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- \
    /bin/sh -c '"$@"; exit $?' sh "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT"
  wait_ready
  sender=$(sender_of 'READY=1')
  track_pid "$sender"
  assert_equal "$(ps -o ppid= -p "$sender" | tr -d ' ')" "$PID1"
  assert_mapped "$sender" "$(probe_fd "$sender" 0)" 0
  assert_equal "$(ask tcp4 "$PORT")" "pid=$sender gen=1"
}

@test "drain: on BATON_DRAIN_SIGNAL a process stops taking connections; another on the same socket takes them" {
  harness_start --listen "tcp4:127.0.0.1:$PORT" --instances 2 --drain-signal 12 -- \
    "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT" --nonblock --wait epoll
  a=$PID1 b=$(instance_pid 2) inode=$(inherited_inode 0)
  wait_for notified_by "$a" 'READY=1'
  wait_for notified_by "$b" 'READY=1'
  fd=$(probe_fd "$a" 0)
  epoll_holds "$a" "$inode"
  # With b stopped, only a can answer.
  kill -STOP "$b"
  assert_equal "$(ask tcp4 "$PORT")" "pid=$a gen=1"

  kill -USR2 "$a"
  wait_for fd_not_inherited "$a" "$fd"
  # Out of a's epoll set, and in its place a listening socket with the program's O_NONBLOCK, registered in the
  # program's epoll set instead (the program's own EPOLL_CTL_DEL of its fd must still work: Twisted's does).
  run ! epoll_holds "$a" "$inode"
  decoy=$(readlink "/proc/$a/fd/$fd" | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
  [[ -n "$decoy" && "$decoy" != "$inode" ]]
  epoll_holds "$a" "$decoy"
  fd_flag_set "$a" "$fd" $O_NONBLOCK
  assert_equal "$(sock_opt "$a" "$fd" SOL_SOCKET SO_ACCEPTCONN)" 1
  # A connection made now waits in the shared queue while b is stopped: a, still running, must not take it.
  bg_run late ask tcp4 "$PORT"
  wait_for client_connected "$PORT"
  kill -CONT "$b"
  wait_for bg_done late
  assert_equal "$(bg_out late)" "pid=$b gen=2"
  for _ in 1 2 3 4 5; do assert_equal "$(ask tcp4 "$PORT")" "pid=$b gen=2"; done
  # Drain does not stop the process: baton sends the stop signal later.
  pid_exists "$a"
  run ! exited 1 '[0-9][0-9]*'
}

@test "drain: a handler the program installed for the signal is left alone" {
  harness_start --listen "tcp4:127.0.0.1:$PORT" --drain-signal 12 -- \
    "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT" --own-handler 12
  wait_ready
  kill -USR2 "$PID1"
  wait_for notified 'PROBE=own-handler'
  assert_mapped "$PID1" "$(probe_fd "$PID1" 0)" 0
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
}

@test "without LISTEN_FDS the shim is inert: a real socket, the program's backlog, no READY=1" {
  harness_start --no-listen-fds -- "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT"
  wait_for notified 'PROBE=waiting'
  assert_equal "$(backlog "$PORT")" 5
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
  # A READY=1 would have been sent from the wait, before the answer's marker.
  wait_for notified 'PROBE=served'
  run ! notified 'READY=1'
}

@test "an inherited fd that is not a socket is ignored" {
  harness_start --fd3-file -- "$PRELOAD_PROBE" --listen "tcp4:127.0.0.1:$PORT"
  wait_for notified 'PROBE=waiting'
  [[ "$(readlink "/proc/$PID1/fd/3")" == "$H/not-a-socket" ]]
  assert_equal "$(backlog "$PORT")" 5
  assert_equal "$(ask tcp4 "$PORT")" "pid=$PID1 gen=1"
  wait_for notified 'PROBE=served'
  run ! notified 'READY=1'
}

@test "a real program: python3 -m http.server serves on the inherited socket and is ready" {
  mkdir "$BATS_TEST_TMPDIR/www"
  echo "hello through the shim" >"$BATS_TEST_TMPDIR/www/hello.txt"
  harness_start --listen "tcp4:127.0.0.1:$PORT" -- \
    "$PYTHON" -m http.server --bind 127.0.0.1 --directory "$BATS_TEST_TMPDIR/www" "$PORT"
  wait_ready
  assert_equal "$(sender_of 'READY=1')" "$PID1"
  # The harness holds the port without SO_REUSEPORT: a real bind() could not have succeeded.
  assert_equal "$(curl -fsS --max-time 5 "http://127.0.0.1:$PORT/hello.txt")" "hello through the shim"
  assert_equal "$(ss -Hltn "( sport = :$PORT )" | wc -l)" 1
  assert_equal "$(backlog "$PORT")" 77
}
