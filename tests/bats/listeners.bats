#!/usr/bin/env bats
# Listeners (baton.yaml(5) LISTENERS and ADDRESSES): every kind reaches the child at its fd with its
# name, the empty host is dual-stack, unix socket files get their mode/owner/group and are replaced only when stale,
# options are applied, and a bind failure exits 111 naming the listener.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() { probe_setup; }
teardown() { teardown_processes; }

@test "every listener kind reaches the child at its fd, in order, with its name" {
  local d=$BATS_TEST_TMPDIR abstract="baton-test-$$-kinds"
  probe_config "  - {name: tcp4, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: tcp6, address: \"tcp://[::1]:$PORT\"}
  - {name: udp4, address: \"udp://127.0.0.1:$PORT\"}
  - {name: udp6, address: \"udp6://[::1]:$PORT\"}
  - {name: unix-path, address: \"unix:$d/stream.sock\"}
  - {name: unix-abstract, address: \"unix:@$abstract\"}
  - {name: unix-dgram, address: \"unix-dgram:$d/dgram.sock\"}
  - {name: unix-seqpacket, address: \"unix-seqpacket:$d/seqpacket.sock\"}"
  probe_start run -c "$CFG"

  assert_equal "$(rep env.LISTEN_FDS)" 8
  assert_equal "$(rep env.LISTEN_FDNAMES)" "tcp4:tcp6:udp4:udp6:unix-path:unix-abstract:unix-dgram:unix-seqpacket"
  assert_equal "$(rep fds)" "0 1 2 3 4 5 6 7 8 9 10"
  assert_equal "$(rep fd.3)" "socket family=inet type=stream listening=1 addr=127.0.0.1:$PORT cloexec=0"
  assert_equal "$(rep fd.4)" "socket family=inet6 type=stream listening=1 addr=[::1]:$PORT cloexec=0"
  assert_equal "$(rep fd.5)" "socket family=inet type=dgram listening=0 addr=127.0.0.1:$PORT cloexec=0"
  assert_equal "$(rep fd.6)" "socket family=inet6 type=dgram listening=0 addr=[::1]:$PORT cloexec=0"
  assert_equal "$(rep fd.7)" "socket family=unix type=stream listening=1 addr=$d/stream.sock cloexec=0"
  assert_equal "$(rep fd.8)" "socket family=unix type=stream listening=1 addr=@$abstract cloexec=0"
  assert_equal "$(rep fd.9)" "socket family=unix type=dgram listening=0 addr=$d/dgram.sock cloexec=0"
  assert_equal "$(rep fd.10)" "socket family=unix type=seqpacket listening=1 addr=$d/seqpacket.sock cloexec=0"
  # The program's own view through libsystemd.
  assert_equal "$(rep sd_listen_fds)" 8
}

@test "the empty host (tcp://:PORT) is dual-stack: IPv4 and IPv6 clients connect" {
  probe_config "  - {name: any, address: \"tcp://:$PORT\"}"
  export PROBE_ECHO=1
  probe_start run -c "$CFG"
  assert_equal "$(rep fd.3)" "socket family=inet6 type=stream listening=1 addr=[::]:$PORT cloexec=0"
  local pid
  pid=$(rep pid)
  run echo_answer "TCP4:127.0.0.1:$PORT"
  assert_success
  assert_output "probe $pid"
  run echo_answer "TCP6:[::1]:$PORT"
  assert_success
  assert_output "probe $pid"
}

@test "a host name with several addresses (localhost) binds its first IPv4 address; clients of the name reach it" {
  probe_config "  - {name: web, address: \"tcp://localhost:$PORT\"}"
  export PROBE_ECHO=1
  probe_start run -c "$CFG"
  # glibc lists ::1 first for localhost where /etc/hosts has it: the rule takes 127.0.0.1 all the same.
  assert_equal "$(rep fd.3)" "socket family=inet type=stream listening=1 addr=127.0.0.1:$PORT cloexec=0"
  run echo_answer "TCP:localhost:$PORT"
  assert_success
  assert_output "probe $(rep pid)"
  run echo_answer "TCP4:127.0.0.1:$PORT"
  assert_success
  assert_output "probe $(rep pid)"
  # python's create_connection() tries each address of the name in the resolver's order.
  run "$PYTHON" -c 'import socket, sys
s = socket.create_connection(("localhost", int(sys.argv[1])), timeout=5)
s.shutdown(socket.SHUT_WR)
print(s.makefile().read().strip())' "$PORT"
  assert_success
  assert_output "probe $(rep pid)"
}

@test "tcp6://localhost binds the IPv6 loopback" {
  grep -q '^0*1 ' /proc/net/if_inet6 2>/dev/null || skip "no IPv6 loopback on this machine (no ::1 in /proc/net/if_inet6)"
  getent ahosts localhost | grep -q '^::1 ' || skip "localhost has no IPv6 address here (/etc/hosts has no '::1 localhost')"
  probe_config "  - {name: web, address: \"tcp6://localhost:$PORT\"}"
  probe_start run -c "$CFG"
  assert_equal "$(rep fd.3)" "socket family=inet6 type=stream listening=1 addr=[::1]:$PORT cloexec=0"
}

@test "a unix socket gets its mode, owner and group" {
  local sock=$BATS_TEST_TMPDIR/owned.sock
  probe_config "  - name: owned
    address: unix:$sock
    mode: \"0640\"
    owner: nobody
    group: nogroup"
  probe_start run -c "$CFG"
  [[ -S "$sock" ]]
  assert_equal "$(stat -c '%a %U %G' "$sock")" "640 nobody nogroup"
}

@test "a stale unix socket file (nobody listens) is replaced" {
  local sock=$BATS_TEST_TMPDIR/stale.sock
  # Bound, then the process exits without unlinking: a socket file nobody listens on.
  "$PYTHON" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()' "$sock"
  [[ -S "$sock" ]]
  probe_config "  - {name: local, address: \"unix:$sock\"}"
  export PROBE_ECHO=1
  probe_start run -c "$CFG"
  assert_equal "$(rep fd.3)" "socket family=unix type=stream listening=1 addr=$sock cloexec=0"
  run echo_answer "UNIX-CONNECT:$sock"
  assert_success
  assert_output "probe $(rep pid)"
}

@test "a unix socket path that another process listens on fails (111, another process)" {
  local sock=$BATS_TEST_TMPDIR/live.sock inode
  socat "UNIX-LISTEN:$sock,fork" /dev/null &
  local socat_pid=$!
  track_pid "$socat_pid"
  wait_for test -S "$sock"
  inode=$(stat -c %i "$sock")
  probe_config "  - {name: local, address: \"unix:$sock\"}"

  run --separate-stderr timeout 10 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "'local'"
  stderr_has "another process"
  assert_no_child
  # The live socket was left alone.
  kill -0 "$socat_pid"
  assert_equal "$(stat -c %i "$sock")" "$inode"
}

@test "a regular file at a unix socket path fails (111, not a socket) and is left alone" {
  local path=$BATS_TEST_TMPDIR/file.sock
  echo "precious" >"$path"
  probe_config "  - {name: local, address: \"unix:$path\"}"

  run --separate-stderr timeout 10 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "'local'"
  stderr_has "not a socket"
  assert_no_child
  assert_equal "$(cat "$path")" "precious"
}

@test "baton removes the unix socket files it created when it exits" {
  local d=$BATS_TEST_TMPDIR
  probe_config "  - {name: stream, address: \"unix:$d/stream.sock\"}
  - {name: dgram, address: \"unix-dgram:$d/dgram.sock\"}
  - {name: seqpacket, address: \"unix-seqpacket:$d/seqpacket.sock\"}"
  probe_start run -c "$CFG"
  [[ -S "$d/stream.sock" && -S "$d/dgram.sock" && -S "$d/seqpacket.sock" ]]
  baton_stop
  assert_equal "$BATON_STATUS" 0
  [[ ! -e "$d/stream.sock" ]]
  [[ ! -e "$d/dgram.sock" ]]
  [[ ! -e "$d/seqpacket.sock" ]]
}

@test "--listen works without a config file, in command-line order" {
  local sock=$BATS_TEST_TMPDIR/cli.sock
  probe_start run --listen "web=tcp://127.0.0.1:$PORT" -l "local=unix:$sock" -- "$PROBE"
  assert_equal "$(rep env.LISTEN_FDS)" 2
  assert_equal "$(rep env.LISTEN_FDNAMES)" "web:local"
  assert_equal "$(rep fd.3)" "socket family=inet type=stream listening=1 addr=127.0.0.1:$PORT cloexec=0"
  assert_equal "$(rep fd.4)" "socket family=unix type=stream listening=1 addr=$sock cloexec=0"
}

@test "backlog is the listen(2) backlog (ss Send-Q); the default is SOMAXCONN" {
  local port2 somaxconn want
  port2=$(probe_free_port)
  probe_config "  - {name: small, address: \"tcp://127.0.0.1:$PORT\", backlog: 123}
  - {name: default, address: \"tcp://127.0.0.1:$port2\"}"
  probe_start run -c "$CFG"
  assert_equal "$(ss -ltnH "sport = :$PORT" | awk '{print $3}')" 123
  # 4096, capped by the kernel at net.core.somaxconn.
  somaxconn=$(cat /proc/sys/net/core/somaxconn)
  want=$((somaxconn < 4096 ? somaxconn : 4096))
  assert_equal "$(ss -ltnH "sport = :$port2" | awk '{print $3}')" "$want"
}

@test "nodelay, keepalive and reuse-port are set on the socket (and off by default)" {
  local port2
  port2=$(probe_free_port)
  probe_config "  - {name: tuned, address: \"tcp://127.0.0.1:$PORT\", nodelay: true, keepalive: true, reuse-port: true}
  - {name: plain, address: \"tcp://127.0.0.1:$port2\"}"
  probe_start run -c "$CFG"
  local pid
  pid=$(rep pid)
  assert_equal "$(sock_opt "$pid" 3 IPPROTO_TCP TCP_NODELAY)" 1
  assert_equal "$(sock_opt "$pid" 3 SOL_SOCKET SO_KEEPALIVE)" 1
  assert_equal "$(sock_opt "$pid" 3 SOL_SOCKET SO_REUSEPORT)" 1
  assert_equal "$(sock_opt "$pid" 4 IPPROTO_TCP TCP_NODELAY)" 0
  assert_equal "$(sock_opt "$pid" 4 SOL_SOCKET SO_KEEPALIVE)" 0
  assert_equal "$(sock_opt "$pid" 4 SOL_SOCKET SO_REUSEPORT)" 0
  # reuse-address defaults to true.
  assert_equal "$(sock_opt "$pid" 4 SOL_SOCKET SO_REUSEADDR)" 1

  # What reuse-port is for: another SO_REUSEPORT socket can listen on the same port, and not on the plain one.
  local try='import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("bound")
except OSError as e:
    print(e.strerror)'
  assert_equal "$("$PYTHON" -c "$try" "$PORT")" bound
  assert_equal "$("$PYTHON" -c "$try" "$port2")" "Address already in use"
}

@test "a port already in use fails (111) naming the listener and 'Address already in use'" {
  # Holds the port (listening, no SO_REUSEADDR) until its stdin closes; prints "up" once bound.
  coproc HOLDER { "$PYTHON" -c 'import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("up", flush=True); sys.stdin.read()' "$PORT"; }
  track_pid "$HOLDER_PID"
  local line
  read -r -t 10 line <&"${HOLDER[0]}"
  assert_equal "$line" up
  probe_config "  - {name: taken, address: \"tcp://127.0.0.1:$PORT\"}"

  run --separate-stderr timeout 10 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 111
  stderr_has "'taken'"
  stderr_has "Address already in use"
  assert_no_child
}
