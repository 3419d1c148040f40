#!/usr/bin/env bats
# Real, unmodified Debian programs under baton, each through the config in config-examples/ that documents it (with
# the port, the paths and the user changed for the test): lighttpd on LISTEN_FDS with log and exec readiness,
# gunicorn on LISTEN_FDS with its own READY=1, memcached daemonizing and followed through its pid file, nginx on an
# inherited socket (NGINX=3;) with pidfile readiness, a Server::Starter program (program.compat), an einhorn-style
# program and in.tftpd on its stdin (program.stdin). Those that share baton's socket reload under a client loop
# without one failed request, and each program's readiness has its way to fail: the reload fails and the old
# generation keeps serving (memcached, which binds its own port: the previous config runs again).
#
# The packages come from contrib/deps.sh --test; a missing program fails its test, saying which.

bats_require_minimum_version 1.5.0
load 'helpers'

EXAMPLES="$TESTS_DIR/../config-examples"

setup() {
  # demo_setup's names, with the port from $PYTHON (a pyenv shim as python3 costs most of a second).
  PORT=$(probe_free_port)
  CFG="$BATS_TEST_TMPDIR/baton.yaml"
  CTL="$BATS_TEST_TMPDIR/ctl.sock"
  ETC="$BATS_TEST_TMPDIR/etc"
  mkdir -p "$ETC"
}

teardown() {
  # A failed test shows the end of baton's log (with the program's output in it).
  if [[ -z "${BATS_TEST_COMPLETED:-}" && -f "${BATON_LOG:-}" ]]; then
    echo "-- the end of baton's log:"
    tail -n 40 "$BATON_LOG"
  fi
  teardown_processes
  # Daemons are nobody's child but baton's, and outlive a baton that teardown_processes killed: each test records
  # the pid files its daemons write, and those that still name a live process of that program are ended here.
  local file pid comm
  [[ -f "$BATS_TEST_TMPDIR/daemon-pid-files" ]] || return 0
  while read -r file comm; do
    pid=$(cat "$file" 2>/dev/null) || continue
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$comm" ]] && kill -KILL "$pid" 2>/dev/null || true
  done <"$BATS_TEST_TMPDIR/daemon-pid-files"
}

# Remembers a pid file whose process (named COMM) teardown ends: track_pid_file FILE COMM
track_pid_file() { echo "$1 $2" >>"$BATS_TEST_TMPDIR/daemon-pid-files"; }

need() {
  local p
  for p in "$@"; do
    [[ -x "$p" ]] || {
      echo "$p is not installed (sh contrib/deps.sh --test installs it)" >&2
      return 1
    }
  done
}

# Copies config-examples/NAME.yaml to $CFG for this test: /etc/baton (where the example keeps the files next to it)
# becomes $ETC, the example's port EXAMPLE_PORT becomes $PORT, "user:" goes (the test's files are in a root-only
# temporary directory, and a test runs as root), and the control socket $CTL is added: example_config NAME EXAMPLE_PORT
example_config() {
  local name=$1 port=$2
  [[ -f "$EXAMPLES/$name.yaml" ]]
  sed -e "s#/etc/baton#$ETC#g" -e "s/127\.0\.0\.1:$port\b/127.0.0.1:$PORT/g" -e "s/\"$port\"/\"$PORT\"/g" \
    -e '/^  user: /d' "$EXAMPLES/$name.yaml" >"$CFG"
  echo "control: {socket: \"$CTL\"}" >>"$CFG"
  # The substitutions took: the example's port is gone, the test's is there.
  if grep -q "\b$port\b" "$CFG"; then
    echo "example_config: port $port is still in $CFG" >&2
    return 1
  fi
  grep -q "\b$PORT\b" "$CFG"
}

# Replaces the top-level section KEY of $CFG with "KEY: VALUE" (a YAML flow mapping): cfg_section KEY VALUE
cfg_section() {
  awk -v key="$1" '
    $0 ~ "^" key ":" { skip = 1; next }
    skip && /^[^ #]/ { skip = 0 }
    !skip' "$CFG" >"$CFG.new"
  echo "$1: $2" >>"$CFG.new"
  mv "$CFG.new" "$CFG"
}

reload_ok() {
  run timeout 30 "$BATON" reload --control "$CTL"
  assert_success
  assert_output --partial "reloaded: generation $1 "
}

# A reload that fails with WHY (a part of its message); the old generation OLD keeps serving.
reload_fails() {
  local why=$1 old=$2
  run timeout 30 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "$why"
  assert_output --partial "generation $old keeps serving"
}

# The generation number in an HTTP answer (header or body, "generation=N") from port.
served_generation() {
  curl -fsSi --max-time 5 "http://127.0.0.1:$1/" | tr -d '\r' |
    sed -n 's/.*generation=\([0-9][0-9]*\).*/\1/p' | head -n1
}
serves_generation() { [[ "$(served_generation "$1")" == "$2" ]]; }

# The current generation, from baton status: current GENERATION_KEY (generation, pid, state).
current() { status_get "next(g[\"$1\"] for g in d[\"generations\"] if g[\"role\"] == \"current\")"; }
# baton runs with one generation, N, ready, and nothing else going on.
settled_on() {
  local now
  now=$(status_get '[d["state"], d["reload_in_progress"], [[g["generation"], g["state"]] for g in d["generations"]]]')
  [[ "$now" == "[\"running\", false, [[$1, \"ready\"]]]" ]]
}

# Starts baton on $CFG and waits until generation 1 is ready (baton says so) and answers on $PORT.
start_settled() {
  baton_start run -c "$CFG"
  wait_for settled_on 1
  wait_for serves_generation "$PORT" 1
}

# The inode of the socket listening on 127.0.0.1:PORT, and the inode of the socket behind a pid's fd.
listen_inode() {
  local hex
  hex=$(printf ':%04X' "$1")
  awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' /proc/net/tcp
}
fd_inode() { readlink "/proc/$1/fd/$2" | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p'; }
# Process PID has the socket with this inode open: holds_socket PID INODE
holds_socket() {
  [[ -n "$2" && -n "$(find "/proc/$1/fd" -lname "socket:\[$2\]" 2>/dev/null)" ]]
}

# The TCP ports process PID listens on, sorted, one a line.
listening_ports() {
  ss -Htlnp | awk -v pat="pid=$1," 'index($0, pat) { n = split($4, a, ":"); print a[n] }' | sort -u
}

# The client loop (helpers.bash) ran through the reloads: it saw generation LAST and 10 answers at least, and no
# request failed.
assert_clients_all_ok() {
  local name=$1 last=$2
  wait_for client_loop_saw "$name" "$last"
  wait_for client_loop_has "$name" 10
  client_loop_stop "$name"
  run grep '^fail' "$BATS_TEST_TMPDIR/$name.log"
  assert_output ""
}
client_loop_has() { (($(client_loop_count "$1" ok) >= $2)); }

# Stops baton with `baton stop` and checks it exited 0. The client waits longer than the examples' stop.timeout
# (30s): a program slow to stop gracefully is killed by baton, which then still exits 0.
stop_ok() {
  run timeout 60 "$BATON" stop --control "$CTL"
  assert_success
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
}

# ---- config-examples/ ----

@test "the program examples are all there and each passes baton check" {
  local f
  for f in lighttpd gunicorn memcached nginx server-starter python-http-server go-service; do
    run --separate-stderr "$BATON" check -c "$EXAMPLES/$f.yaml"
    echo "$f.yaml: status $status, stderr: $stderr"
    assert_success
  done
  # The files the examples name next to them.
  for f in lighttpd.conf nginx.conf hello_wsgi.py server-starter-app.pl; do
    [[ -s "$EXAMPLES/$f" ]]
  done
  perl -c "$EXAMPLES/server-starter-app.pl"
  "$PYTHON" -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$EXAMPLES/hello_wsgi.py"
}

# ---- lighttpd: LISTEN_FDS, readiness log and exec ----

# $CFG from config-examples/lighttpd.yaml, and $ETC/lighttpd.conf serving $BATS_TEST_TMPDIR/www.
lighttpd_setup() {
  need /usr/sbin/lighttpd
  mkdir -p "$BATS_TEST_TMPDIR/www"
  echo "hello from lighttpd" >"$BATS_TEST_TMPDIR/www/index.html"
  sed "s#^server.document-root = .*#server.document-root = \"$BATS_TEST_TMPDIR/www\"#" "$EXAMPLES/lighttpd.conf" \
    >"$ETC/lighttpd.conf"
  grep -q "$BATS_TEST_TMPDIR/www" "$ETC/lighttpd.conf"
  example_config lighttpd 8080
}

@test "lighttpd on baton's socket (LISTEN_FDS), ready by its log line: reloads under a client loop, no failed request" {
  lighttpd_setup
  start_settled
  log_has "generation 1 \(pid [0-9]+\): its stderr matched readiness.pattern"
  # Its output passes through to baton's.
  log_has "server started \(lighttpd/"
  pid1=$(current pid)
  assert_equal "$pid1" "$(logged_pid 1)"
  # lighttpd serves the very socket baton holds (fd 3), and binds nothing of its own (no default port 80).
  assert_equal "$(listen_inode "$PORT")" "$(fd_inode "$pid1" 3)"
  holds_socket "$BATON_PID" "$(listen_inode "$PORT")"
  assert_equal "$(listening_ports "$pid1")" "$PORT"

  client_loop_start load "$PORT"
  reload_ok 2
  reload_ok 3
  assert_clients_all_ok load 3
  # The old ones finished (SIGINT: lighttpd's graceful shutdown) and exited.
  wait_gone "$pid1"
  wait_for settled_on 3
  stop_ok
  log_has "graceful shutdown started"
}

@test "lighttpd: a reload with a config syntax error, or whose log line goes elsewhere, fails; the old one serves" {
  lighttpd_setup
  # readiness.timeout shorter than the example's 10s, for the second case.
  sed -i 's/^  timeout: 10s$/  timeout: 1500ms/' "$CFG"
  grep -q "timeout: 1500ms" "$CFG"
  start_settled
  pid1=$(current pid)
  client_loop_start load "$PORT"

  # A syntax error: lighttpd exits before its "server started" line (and before it accepts anything).
  cp "$ETC/lighttpd.conf" "$ETC/lighttpd.conf.good"
  echo 'server.modules += ( "mod_status"' >>"$ETC/lighttpd.conf"
  reload_fails "exited with status 255 before it was ready" 1
  log_has "configfile.c.*(parser failed|source:)"
  assert_clients_all_ok load 1

  # server.errorlog set: lighttpd starts fine, but says "server started" in that file, not on the stderr baton
  # reads; it is never ready, and is killed at readiness.timeout. (No client loop here: this lighttpd accepts
  # on the shared socket meanwhile, and the SIGKILL of a discarded generation cuts the requests it holds.)
  cp "$ETC/lighttpd.conf.good" "$ETC/lighttpd.conf"
  echo "server.errorlog = \"$BATS_TEST_TMPDIR/lighttpd-error.log\"" >>"$ETC/lighttpd.conf"
  reload_fails "not ready within 1500ms" 1
  grep -q "server started" "$BATS_TEST_TMPDIR/lighttpd-error.log"
  pid3=$(logged_pid 3)
  [[ -n "$pid3" ]]
  wait_gone "$pid3"

  # Generation 1 serves on.
  assert_equal "$(current pid)" "$pid1"
  serves_generation "$PORT" 1
  cp "$ETC/lighttpd.conf.good" "$ETC/lighttpd.conf"
  reload_ok 4
  # The old generation is told to stop gracefully: a connection it took from the shared backlog before it closed its
  # listening socket is still answered by it. Then only generation 4 serves.
  wait_for serves_generation "$PORT" 4
  stop_ok
}

@test "lighttpd with exec readiness: a probe of the new process's own status socket; a misconfigured one never passes" {
  lighttpd_setup
  # Each generation binds a unix socket of its own, named after BATON_GENERATION (lighttpd reads env.* in its
  # config); the probe asks that one, never the listener baton holds (where the old generation would answer).
  cp "$ETC/lighttpd.conf" "$ETC/lighttpd.conf.plain"
  cat >>"$ETC/lighttpd.conf" <<EOF
var.status_socket = "$ETC/status-" + env.BATON_GENERATION + ".sock"
\$SERVER["socket"] == var.status_socket { }
EOF
  # BATON_PID is the generation's main pid: the probe checks it is lighttpd, then asks its status socket.
  cfg_section readiness "{type: exec, interval: 50ms, timeout: 2s, command: [/bin/sh, -c,
    '[ \"\$(cat /proc/\$BATON_PID/comm)\" = lighttpd ] && exec curl -fsS -o /dev/null --max-time 1
     --unix-socket \"\$0/status-\$BATON_GENERATION.sock\" http://localhost/', \"$ETC\"]}"
  run "$BATON" check -c "$CFG"
  assert_success
  assert_output --partial "type: exec"

  start_settled
  log_has "generation 1 \(pid [0-9]+\): readiness.command exited 0"
  [[ -S "$ETC/status-1.sock" ]]
  pid1=$(current pid)
  client_loop_start load "$PORT"
  reload_ok 2
  reload_ok 3
  assert_clients_all_ok load 3
  wait_gone "$pid1"

  # The new lighttpd starts and would serve, but has no status socket: the probe never passes. (No client loop:
  # see the errorlog case above.)
  cp "$ETC/lighttpd.conf.plain" "$ETC/lighttpd.conf"
  pid3=$(current pid)
  reload_fails "not ready within 2s" 3
  pid4=$(logged_pid 4)
  [[ -n "$pid4" ]]
  wait_gone "$pid4"
  [[ ! -e "$ETC/status-4.sock" ]]
  assert_equal "$(current pid)" "$pid3"
  serves_generation "$PORT" 3
  stop_ok
}

# ---- gunicorn: LISTEN_FDS and its own READY=1 ----

gunicorn_setup() {
  need /usr/bin/gunicorn
  cp "$EXAMPLES/hello_wsgi.py" "$ETC/"
  example_config gunicorn 8000
}

@test "gunicorn on baton's socket (LISTEN_FDS), its own READY=1: reloads under a client loop; a broken app's fails" {
  gunicorn_setup
  start_settled
  pid1=$(current pid)
  # The arbiter said READY=1 itself (readiness.type notify), on the socket baton passed, binding no other.
  log_has "Listening at: http://127.0.0.1:$PORT \($pid1\)"
  # (gunicorn keeps a dup of fd 3, and closes 3.)
  holds_socket "$pid1" "$(listen_inode "$PORT")"
  holds_socket "$BATON_PID" "$(listen_inode "$PORT")"
  assert_equal "$(listening_ports "$pid1")" "$PORT"
  client_loop_start load "$PORT"

  # New code with a syntax error: with --preload the arbiter imports it before READY=1, and exits (before it has
  # workers to accept anything). Generation 1 keeps serving the code it loaded.
  cp "$ETC/hello_wsgi.py" "$ETC/hello_wsgi.py.good"
  echo "def broken(:" >>"$ETC/hello_wsgi.py"
  reload_fails "before it was ready" 1
  log_has "SyntaxError"
  assert_equal "$(current pid)" "$pid1"

  # The code fixed: generation 3 takes over.
  cp "$ETC/hello_wsgi.py.good" "$ETC/hello_wsgi.py"
  reload_ok 3
  assert_clients_all_ok load 3
  # SIGTERM (stop.signal) is gunicorn's graceful stop: the old arbiter ends its workers and exits 0. Waited for in
  # baton's log: the process is gone (a zombie, to ps) a moment before baton has reaped it and said so.
  wait_log "generation 1 \(pid $pid1\) exited with status 0"
  stop_ok
}

# ---- memcached: a daemon followed through its pid file ----

# $CFG from config-examples/memcached.yaml; its pid file is $PIDFILE (memcached as root, -u root: the test's
# directory is root's alone).
memcached_setup() {
  need /usr/bin/memcached
  PIDFILE="$BATS_TEST_TMPDIR/memcached.pid"
  example_config memcached 11211
  sed -i -e "s#/run/memcached/baton.pid#$PIDFILE#g" -e 's/-u, memcache,/-u, root,/' "$CFG"
  grep -q -- "-u, root," "$CFG"
  [[ "$(grep -c "$PIDFILE" "$CFG")" == 2 ]]
  track_pid_file "$PIDFILE" memcached
}

memcached_answers() {
  [[ "$(printf 'version\r\nquit\r\n' | timeout 5 socat -t 2 - "TCP:127.0.0.1:$PORT" | tr -d '\r')" == VERSION\ * ]]
}

@test "memcached -d: baton follows the daemon by its pid file; reload replaces it, SIGKILL restarts it, stop ends it" {
  memcached_setup
  baton_start run -c "$CFG"
  wait_for settled_on 1
  launcher=$(logged_pid 1)
  daemon1=$(current pid)
  # The generation's pid is the daemon's, not the launcher's, which exited 0 after the fork.
  [[ "$daemon1" != "$launcher" ]]
  assert_equal "$(cat "$PIDFILE")" "$daemon1"
  assert_equal "$(cat "/proc/$daemon1/comm")" memcached
  assert_equal "$(ps -o ppid= -p "$daemon1" | tr -d ' ')" "$BATON_PID"
  pid_gone "$launcher"
  log_has "generation 1: following pid $daemon1 from $PIDFILE \(the program daemonized\)"
  run "$BATON" status --control "$CTL"
  assert_output --partial "generation 1: pid $daemon1, ready (current)"
  wait_for memcached_answers

  # reload (strategy restart): the old daemon exits, a new one takes the port.
  reload_ok 2
  daemon2=$(current pid)
  [[ "$daemon2" != "$daemon1" ]]
  pid_gone "$daemon1"
  assert_equal "$(cat "$PIDFILE")" "$daemon2"
  wait_for memcached_answers

  # The daemon killed: a crash, restarted as any program's would be.
  kill -KILL "$daemon2"
  wait_for settled_on 3
  daemon3=$(current pid)
  [[ "$daemon3" != "$daemon2" ]]
  assert_equal "$(cat "/proc/$daemon3/comm")" memcached
  log_has "generation 2 \(pid $daemon2\) was killed by SIGKILL; restarting"
  assert_equal "$(status_get 'd["restarts"]')" 1
  wait_for memcached_answers

  stop_ok
  pid_gone "$daemon3"
  log_has "stopping generation 3 \(pid $daemon3\) with SIGTERM"
}

@test "memcached: a reload whose memcached rejects its options fails; the previous config runs again" {
  memcached_setup
  baton_start run -c "$CFG"
  wait_for settled_on 1
  daemon1=$(current pid)

  # With reload.strategy restart the old daemon is gone by the time the new one fails (one port, one daemon):
  # baton starts the previous config again, as after a crash.
  cp "$CFG" "$CFG.good"
  sed -i 's/-m, "64"\]/-m, "64", --no-such-option]/' "$CFG"
  grep -q -- "--no-such-option" "$CFG"
  run timeout 30 "$BATON" reload --control "$CTL"
  assert_failure 1
  assert_output --partial "exited with status 1 before it was ready"
  pid_gone "$daemon1"
  wait_for settled_on 3
  daemon3=$(current pid)
  # The running daemon is the previous config's.
  tr '\0' ' ' <"/proc/$daemon3/cmdline" | grep -q -- "-m 64 $"
  wait_for memcached_answers

  cp "$CFG.good" "$CFG"
  stop_ok
}

@test "memcached whose pid file never names it: the failed generation's daemon does not live on" {
  memcached_setup
  # The daemon writes another pid file than the one baton reads.
  sed -i -e "s#-P, $PIDFILE#-P, $PIDFILE.other#" -e 's/^  timeout: 10s$/  timeout: 1s/' "$CFG"
  track_pid_file "$PIDFILE.other" memcached
  baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 102
  log_has "not ready within 1s"
  [[ -s "$PIDFILE.other" ]]
  log_has "killing pid [0-9]+, which it left behind"
  wait_for pid_gone "$(cat "$PIDFILE.other")"
}

# ---- nginx: an inherited socket (NGINX=3;), pidfile readiness ----

# $CFG and $ETC/nginx.conf from config-examples/, listening on $PORT, serving $BATS_TEST_TMPDIR/www/N (N: the
# generation that nginx_serve N set up).
nginx_setup() {
  need /usr/sbin/nginx
  PIDFILE="$BATS_TEST_TMPDIR/nginx.pid"
  example_config nginx 8081
  sed -i "s#/run/nginx-baton.pid#$PIDFILE#" "$CFG"
  # Workers as root: the test's directory is root's alone (nginx's default worker user is nobody).
  { echo "user root;"; sed -e "s#/run/nginx-baton.pid#$PIDFILE#" -e "s/127\.0\.0\.1:8081;/127.0.0.1:$PORT;/" \
    "$EXAMPLES/nginx.conf"; } >"$ETC/nginx.conf"
  grep -q "listen 127.0.0.1:$PORT;" "$ETC/nginx.conf"
  grep -q "pid $PIDFILE;" "$ETC/nginx.conf"
  track_pid_file "$PIDFILE" nginx
}
# The next generation serves www/N, whose index says "generation=N".
nginx_serve() {
  mkdir -p "$BATS_TEST_TMPDIR/www/$1"
  echo "generation=$1" >"$BATS_TEST_TMPDIR/www/$1/index.html"
  sed -i "s#^\( *root \).*;#\1$BATS_TEST_TMPDIR/www/$1;#" "$ETC/nginx.conf"
  grep -q "root $BATS_TEST_TMPDIR/www/$1;" "$ETC/nginx.conf"
}

@test "nginx on baton's socket (NGINX=3;), ready by its pid file: reloads under a client loop, no failed request" {
  nginx_setup
  nginx_serve 1
  start_settled
  pid1=$(current pid)
  log_has "using inherited sockets from \"3;\""
  log_has "generation 1 \(pid $pid1\): $PIDFILE names pid $pid1"
  # The master and its workers serve baton's socket; nginx bound none of its own.
  assert_equal "$(listen_inode "$PORT")" "$(fd_inode "$pid1" 3)"
  holds_socket "$BATON_PID" "$(listen_inode "$PORT")"
  assert_equal "$(listening_ports "$pid1")" "$PORT"

  client_loop_start load "$PORT"
  for gen in 2 3; do
    nginx_serve "$gen"
    reload_ok "$gen"
  done
  assert_clients_all_ok load 3
  # SIGQUIT (stop.signal): the old masters end their workers gracefully and exit.
  wait_gone "$pid1"
  wait_for settled_on 3
  [[ "$(cat "$PIDFILE" 2>/dev/null)" != "$pid1" ]]
  stop_ok
  run pgrep -f "nginx -c $ETC/nginx.conf"
  assert_failure
}

@test "nginx: a reload with a broken config, or whose pid file goes elsewhere, fails; the old one serves on" {
  nginx_setup
  nginx_serve 1
  sed -i 's/^  timeout: 10s$/  timeout: 1500ms/' "$CFG"
  grep -q "timeout: 1500ms" "$CFG"
  start_settled
  pid1=$(current pid)
  client_loop_start load "$PORT"
  cp "$ETC/nginx.conf" "$ETC/nginx.conf.good"

  # A syntax error: nginx exits 1 before it writes its pid file (and before it accepts anything).
  echo "http {" >>"$ETC/nginx.conf"
  reload_fails "exited with status 1 before it was ready" 1
  assert_clients_all_ok load 1

  # A pid file at another path: nginx runs, but the file baton reads still names generation 1, which is not the new
  # generation's; it is never ready, and is killed at readiness.timeout with its workers. (No client loop: its
  # workers accept on the shared socket meanwhile, and the SIGKILL of a discarded generation cuts their requests.)
  sed "s#^pid .*;#pid $PIDFILE.other;#" "$ETC/nginx.conf.good" >"$ETC/nginx.conf"
  track_pid_file "$PIDFILE.other" nginx
  reload_fails "not ready within 1500ms" 1
  pid3=$(logged_pid 3)
  [[ -n "$pid3" ]]
  wait_gone "$pid3"
  run pgrep -P "$pid3"
  assert_failure
  assert_equal "$(current pid)" "$pid1"
  serves_generation "$PORT" 1

  cp "$ETC/nginx.conf.good" "$ETC/nginx.conf"
  nginx_serve 4
  reload_ok 4
  # The old generation is told to stop gracefully: a connection it took from the shared backlog before it closed its
  # listening socket is still answered by it. Then only generation 4 serves.
  wait_for serves_generation "$PORT" 4
  stop_ok
}

# ---- program.compat: Server::Starter and einhorn ----

@test "a Server::Starter program (server_ports from libserver-starter-perl): reloads under a client loop, no failure" {
  need /usr/bin/perl
  perl -MServer::Starter -e 1
  cp "$EXAMPLES/server-starter-app.pl" "$ETC/"
  example_config server-starter 8082
  start_settled
  pid1=$(current pid)
  log_has "generation 1 \(pid $pid1\): its stderr matched readiness.pattern"
  tr '\0' '\n' <"/proc/$pid1/environ" | grep -qx "SERVER_STARTER_PORT=127.0.0.1:$PORT=3"
  tr '\0' '\n' <"/proc/$pid1/environ" | grep -qx "SERVER_STARTER_GENERATION=1"
  # The perl program's socket, built from SERVER_STARTER_PORT's fd, is baton's.
  assert_equal "$(fd_inode "$pid1" 3)" "$(listen_inode "$PORT")"
  holds_socket "$BATON_PID" "$(listen_inode "$PORT")"

  client_loop_start load "$PORT"
  reload_ok 2
  reload_ok 3
  # Its last line reaches baton's log through the pipe after the process is gone: waited for.
  wait_gone "$pid1"
  wait_log "server-starter-app: generation 1 stopped"

  # Without program.compat the program finds no SERVER_STARTER_PORT and dies: the reload fails.
  sed -i '/^  compat: \[server-starter\]$/d' "$CFG"
  reload_fails "before it was ready" 3
  log_has "no environment variable SERVER_STARTER_PORT"
  assert_clients_all_ok load 3
  stop_ok
}

# A program written against einhorn's environment: EINHORN_FD_COUNT and EINHORN_FD_0.. (Debian has no einhorn
# client library, so this is python reading the variables as einhorn's own clients do). It serves HTTP on every
# socket, writes $1/ready.PID once it serves, and ends on SIGTERM after the request in hand.
einhorn_program() {
  py_child einhorn <<'PY'
import select
count = int(os.environ["EINHORN_FD_COUNT"])
socks = [socket.socket(fileno=int(os.environ["EINHORN_FD_%d" % i])) for i in range(count)]
for s in socks:
    s.setblocking(False)  # several processes accept on these: a connection another one took is no reason to block
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGTERM, lambda *_: None)
open(os.path.join(sys.argv[1], "ready.%d" % os.getpid()), "w").close()
while True:
    readable = select.select(socks + [wake_r], [], [])[0]
    if wake_r in readable:
        break
    for s in readable:
        try:
            c, _ = s.accept()
        except BlockingIOError:
            continue
        with c:
            c.setblocking(True)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk:
                    break
                head += chunk
            body = ("hello from einhorn-style python pid=%d generation=%s fd=%d\n"
                    % (os.getpid(), os.environ["BATON_GENERATION"], s.fileno())).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
PY
}

@test "an einhorn-style program (EINHORN_FD_COUNT, EINHORN_FD_n), exec readiness: reloads under a client loop" {
  PORT2=$(probe_free_port)
  local prog
  prog=$(einhorn_program)
  CFG_LISTENERS="  - {name: http, address: \"tcp://127.0.0.1:$PORT\"}
  - {name: admin, address: \"tcp://127.0.0.1:$PORT2\"}" \
    CFG_READINESS="{type: exec, interval: 50ms, timeout: 3s,
      command: [/bin/sh, -c, 'test -e \"\$0/ready.\$BATON_PID\"', \"$BATS_TEST_TMPDIR\"]}" \
    CFG_EXTRA="control: {socket: \"$CTL\"}" program_config "$PYTHON" "$prog" "$BATS_TEST_TMPDIR"
  sed -i '/^control: {socket: ""}$/d' "$CFG"
  sed -i 's/^program:$/program:\n  compat: [einhorn]/' "$CFG"
  run "$BATON" check -c "$CFG"
  assert_success
  assert_output --partial "compat: [einhorn]"

  start_settled
  pid1=$(current pid)
  log_has "generation 1 \(pid $pid1\): readiness.command exited 0"
  run bash -c "tr '\0' '\n' </proc/$pid1/environ | grep ^EINHORN_ | sort"
  assert_output "EINHORN_FD_0=3
EINHORN_FD_1=4
EINHORN_FD_COUNT=2"
  # Both sockets serve, each the listener's own fd.
  run curl -fsS --max-time 5 "http://127.0.0.1:$PORT2/"
  assert_output --partial "generation=1 fd=4"

  client_loop_start load "$PORT"
  reload_ok 2
  reload_ok 3
  wait_gone "$pid1"

  # Without program.compat the variables are missing; the program exits 1 before it is ready.
  sed -i '/^  compat: \[einhorn\]$/d' "$CFG"
  reload_fails "exited with status 1 before it was ready" 3
  log_has "KeyError: 'EINHORN_FD_COUNT'"
  assert_clients_all_ok load 3
  stop_ok
}

# ---- program.stdin: an inetd "wait" program ----

# A TFTP read request for NAME from 127.0.0.1:PORT: prints the file (one block of less than 512 bytes).
tftp_get() {
  "$PYTHON" - "$1" "$2" <<'PY'
import socket, struct, sys
port, name = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"\0\1" + name.encode() + b"\0octet\0", ("127.0.0.1", port))
data, peer = s.recvfrom(600)  # from the transfer's own port (the server's fork), not the listener
op, block = struct.unpack("!HH", data[:4])
if op != 3 or block != 1 or len(data) - 4 >= 512:
    sys.exit("unexpected answer %r" % data[:80])
s.sendto(struct.pack("!HH", 4, block), peer)
sys.stdout.write(data[4:].decode())
PY
}

@test "in.tftpd as inetd runs it (wait mode): its UDP socket on stdin through program.stdin" {
  need /usr/sbin/in.tftpd
  # Debian 13's tftpd-hpa (5.2+20240128) is broken in inetd mode, with or without baton: the child that serves a
  # transfer calls socket(AF_UNSPEC, ...), which fails with EAFNOSUPPORT, so no request is ever answered.
  local v
  v=$(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null) || v=""
  if [[ -n "$v" ]] && dpkg --compare-versions "$v" ge 5.2+20240101; then
    skip "tftpd-hpa $v is broken in inetd mode (its transfer child calls socket(AF_UNSPEC)); Debian 12's runs here"
  fi
  mkdir -p "$BATS_TEST_TMPDIR/tftp"
  chmod 755 "$BATS_TEST_TMPDIR/tftp"
  echo "hello over tftp" >"$BATS_TEST_TMPDIR/tftp/hello.txt"
  chmod 644 "$BATS_TEST_TMPDIR/tftp/hello.txt"
  # Readiness none: in.tftpd cannot say when it is ready, and the only thing to probe is the socket baton holds
  # (a datagram sent there waits in it whether or not in.tftpd is working).
  CFG_LISTENERS="  - {name: tftp, address: \"udp://127.0.0.1:$PORT\"}" CFG_READINESS="{type: none}" \
    CFG_EXTRA="control: {socket: \"$CTL\"}" program_config /usr/sbin/in.tftpd --secure "$BATS_TEST_TMPDIR/tftp"
  sed -i '/^control: {socket: ""}$/d' "$CFG"
  sed -i 's/^program:$/program:\n  stdin: tftp/' "$CFG"
  baton_start run -c "$CFG"
  wait_for settled_on 1
  pid=$(current pid)
  # Its stdin is the socket baton bound (inetd's "wait": the server itself reads the listening socket).
  holds_socket "$BATON_PID" "$(fd_inode "$pid" 0)"
  [[ "$(ss -Hunlp "( sport = :$PORT )" | grep -c "pid=$pid,fd=0")" == 1 ]]
  run tftp_get "$PORT" hello.txt
  assert_success
  assert_output "hello over tftp"
  # A second request, to the same in.tftpd (it forks a child per transfer and keeps reading its socket).
  run tftp_get "$PORT" hello.txt
  assert_output "hello over tftp"
  assert_equal "$(current pid)" "$pid"
  stop_ok
}

# ---- through the preload shim: programs that bind their own port ----

# client_loop_start for another protocol (tests/programs/client-loop.py): proto_loop_start NAME PORT http|memcached.
proto_loop_start() {
  local name=$1 port=$2 proto=$3
  "$PYTHON" "$TESTS_DIR/programs/client-loop.py" "$port" "$BATS_TEST_TMPDIR/$name.stop" "$proto" \
    >"$BATS_TEST_TMPDIR/$name.log" 2>&1 &
  track_pid $!
  eval "CLIENT_LOOP_PID_$name=$!"
}

# Reloads N times under the loop NAME, each time waiting until the replaced generation has drained and gone, and
# checks that no connection failed: shim_reloads NAME FIRST LAST
shim_reloads() {
  local name=$1 g
  for ((g = $2; g <= $3; g++)); do
    reload_ok "$g"
    wait_for settled_on "$g"
  done
  wait_for client_loop_has "$name" 10
  client_loop_stop "$name"
  assert_equal "$(client_loop_count "$name" fail)" 0
}

http_ok() { curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:$PORT/"; }

@test "python3 -m http.server through the preload shim: READY=1 when it serves, reloads under a client loop fail nothing" {
  need /usr/bin/python3
  example_config python-http-server 8000
  mkdir -p "$BATS_TEST_TMPDIR/www" && echo hello >"$BATS_TEST_TMPDIR/www/index.html"
  sed -i "s#working-directory: /var/www/html#working-directory: $BATS_TEST_TMPDIR/www#" "$CFG"
  start_settled_http() {
    baton_start run -c "$CFG"
    wait_for settled_on 1
    wait_for http_ok
  }
  start_settled_http
  # The program's socket is baton's: the one listening socket on the port, held by baton and by the program, which
  # listens on nothing else.
  inode=$(listen_inode "$PORT")
  [[ -n "$inode" ]]
  holds_socket "$BATON_PID" "$inode"
  pid=$(current pid)
  holds_socket "$pid" "$inode"
  assert_equal "$(listening_ports "$pid")" "$PORT"
  log_has "generation 1 is ready"
  run grep -c "sending SIGKILL" "$BATON_LOG"
  assert_output 0

  proto_loop_start load "$PORT" http
  wait_for client_loop_has load 5
  shim_reloads load 2 4
  log_has "draining generation 1 \(pid [0-9]+\) for 2s"
  pid=$(current pid)
  holds_socket "$pid" "$inode"
  assert_equal "$(listen_inode "$PORT")" "$inode"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "memcached binding its own port through the preload shim (libevent epoll): reloads under a client loop fail nothing" {
  need /usr/bin/memcached
  cat >"$CFG" <<EOF2
listeners:
  - {name: memcache, address: "tcp://127.0.0.1:$PORT"}
program:
  command: [/usr/bin/memcached, -u, root, -l, 127.0.0.1, -p, "$PORT", -U, "0"]
  preload: true
readiness: {timeout: 10s}
stop: {drain: 1s, timeout: 5s}
control: {socket: "$CTL"}
EOF2
  baton_start run -c "$CFG"
  wait_for settled_on 1
  wait_for memcached_answers
  inode=$(listen_inode "$PORT")
  holds_socket "$(current pid)" "$inode"
  assert_equal "$(listening_ports "$(current pid)")" "$PORT"

  proto_loop_start load "$PORT" memcached
  wait_for client_loop_has load 5
  shim_reloads load 2 4
  log_has "draining generation 3"
  holds_socket "$(current pid)" "$inode"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "Twisted (twistd3 web, epoll reactor) through the preload shim with stop.drain: reloads under a client loop fail nothing, and its drained stop is clean" {
  need /usr/bin/twistd3
  mkdir -p "$BATS_TEST_TMPDIR/www" && echo hello >"$BATS_TEST_TMPDIR/www/index.html"
  cat >"$CFG" <<EOF2
listeners:
  - {name: http, address: "tcp://127.0.0.1:$PORT"}
program:
  command: [/usr/bin/twistd3, --nodaemon, --pidfile=, web, --listen, "tcp:$PORT:interface=127.0.0.1", --path, "$BATS_TEST_TMPDIR/www"]
  preload: true
readiness: {timeout: 20s}
stop: {drain: 1s, timeout: 5s}
control: {socket: "$CTL"}
EOF2
  baton_start run -c "$CFG"
  wait_for settled_on 1
  wait_for http_ok
  proto_loop_start load "$PORT" http
  wait_for client_loop_has load 5
  shim_reloads load 2 4
  echo "# twistd3 web: 3 reloads with stop.drain under a client loop: $(client_loop_count load ok) requests, $(client_loop_count load fail) failed" >&3
  log_has "draining generation 3"
  # Each drained generation stopped as Twisted stops when nothing happened to its event loop: its port closed, no
  # traceback (the shim's swap used to make its epoll reactor fail with KeyError in removeAll).
  assert_equal "$(grep -c '(TCP Port [0-9]* Closed)' "$BATON_LOG")" 3
  run grep -E 'Traceback|KeyError|Unhandled Error' "$BATON_LOG"
  assert_failure
  baton_stop
  assert_equal "$BATON_STATUS" 0
}
