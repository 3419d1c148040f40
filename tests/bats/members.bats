#!/usr/bin/env bats
# Exact membership without cgroups (baton(1) WHAT BELONGS TO A GENERATION; program.cgroup: never): each generation's
# keeper is the parent of its program and the subreaper of all it starts, so a generation's processes are exactly
# the keeper's descendants, whatever they do. The reproductions of issue 19 (a reload that killed the new generation's
# setsid daemon; ownership read from a BATON_GENERATION the program can overwrite; counts of 1 for three daemons),
# and a generation that leaves five kinds of processes: a worker in its process group that ignores SIGTERM, a
# double-forked setsid daemon, the same clearing its environment and re-exec'ing, the same overwriting its argv and
# environ in place, and the same re-exec'ing under another argv[0]. Counted 6 of 6, nothing left after a SIGKILL of
# the main process, a reload keeps the new generation's, a stop returns within stop.timeout and leaves nothing.

load 'helpers'

setup() {
  T=$BATS_TEST_TMPDIR
  CTL="$T/ctl.sock"
}
teardown() {
  teardown_processes
  local f
  for f in "$T"/left/*; do
    [[ -e "$f" ]] && kill -KILL "$(cat "$f")" 2>/dev/null
  done
  true
}

# The program of each generation: it starts the five leftovers, each writing its pid to $T/left/gen$N.KIND, then
# becomes the main process (sleep; one that ignores SIGTERM with the argument ignore-term). KIND: worker daemon
# envclear overwrite renamed.
leaver() {
  py_child leaver <<'PY'
import ctypes
gen, out = os.environ["BATON_GENERATION"], sys.argv[1]
os.makedirs(out, exist_ok=True)
def record(kind):
    tmp = "%s/.gen%s.%s" % (out, gen, kind)
    with open(tmp, "w") as f:
        f.write(str(os.getpid()))
    os.rename(tmp, "%s/gen%s.%s" % (out, gen, kind))
def daemon(kind):
    # Double fork and setsid: the daemon's parent exits at once, it is an orphan in a session of its own.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            if kind == "daemon":
                record(kind)
                os.execv("/bin/sleep", ["sleep", "1002"])
            if kind == "envclear":
                record(kind)
                os.execve("/bin/sleep", ["sleep", "1003"], {})
            if kind == "renamed":
                record(kind)
                os.execv("/bin/sleep", ["nginx: worker process", "1005"])
            if kind == "overwrite":
                # Its argv and environ areas in /proc/PID/mem overwritten in place: BATON_GENERATION is gone.
                stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
                arg_start, arg_end, env_start, env_end = (int(x) for x in stat[45:49])
                with open("/proc/self/mem", "r+b", buffering=0) as mem:
                    for start, end in ((arg_start, arg_end), (env_start, env_end)):
                        mem.seek(start)
                        mem.write(b"x" * (end - start - 1) + b"\0")
                assert b"BATON_GENERATION" not in open("/proc/self/environ", "rb").read()
                record(kind)
                signal.pause()
                os._exit(0)
        os._exit(0)
    os.wait()
# A worker in the program's process group that ignores SIGTERM.
if os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    record("worker")
    os.execv("/bin/sleep", ["sleep", "1001"])
for kind in ("daemon", "envclear", "overwrite", "renamed"):
    daemon(kind)
if sys.argv[2:] == ["ignore-term"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.execv("/bin/sleep", ["sleep", "100000"])
PY
}

KINDS="worker daemon envclear overwrite renamed"
# The pids generation N left (all five recorded).
gen_pids() { local k; for k in $KINDS; do cat "$T/left/gen$1.$k"; echo; done; }
all_recorded() { local k; for k in $KINDS; do [[ -s "$T/left/gen$1.$k" ]] || return 1; done; }
alive() { ! pid_gone "$1"; }
all_alive() { local p; for p in $(gen_pids "$1"); do alive "$p" || return 1; done; }
all_gone() { local p; for p in $(gen_pids "$1"); do pid_gone "$p" || return 1; done; }
# The processes status counts for generation N.
count_of() { status_get "[g['processes'] for g in d['generations'] if g['generation'] == $1]"; }
counts() { [[ "$(count_of "$1")" == "[$2]" ]]; }
one_generation() { [[ "$(status_get "len(d['generations'])")" == 1 ]]; }
# SIGKILL to generation 1's keeper (baton's one child), from outside; sets keeper and main (its main process,
# tracked for the teardown).
kill_keeper() {
  keeper=$(children_of "$BATON_PID")
  main=$(status_get "d['generations'][0]['pid']")
  track_pid "$main"
  kill -KILL "$keeper"
}
# `baton stop` on the control socket, which must succeed; sets ms to its wall time.
timed_stop() {
  local t0 t1
  t0=$(date +%s%N)
  run timeout 30 "$BATON" stop --control "$CTL"
  t1=$(date +%s%N)
  assert_success
  ms=$(((t1 - t0) / 1000000))
}

# A reload of a leaver: generation 2's leftovers live on, generation 1's are gone, and only generation 2 is left.
reload_keeps_new() {
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for all_recorded 2
  wait_for all_gone 1
  all_alive 2
  wait_for counts 2 6
  wait_for one_generation
}

start_leaver() {
  baton_start run --log-level info --set program.cgroup=never --set control.socket="$CTL" \
    --set stop.timeout="${STOP_TIMEOUT:-2s}" "$@" -- "$PYTHON" "$(leaver)" "$T/left" ${LEAVER_MODE:-}
  wait_for test -S "$CTL"
  wait_for all_recorded 1 || { cat "$BATON_LOG"; ls -la "$T/left"; return 1; }
}

@test "never: five kinds of leftovers are counted 6 of 6 at once, and each is a descendant of the keeper" {
  start_leaver
  wait_for counts 1 6
  local keeper
  keeper=$(children_of "$BATON_PID")
  [[ "$(wc -w <<<"$keeper")" == 1 ]] || fail "baton has children $keeper (one keeper expected)"
  assert_equal "$(cat "/proc/$keeper/comm")" baton-keeper
  log_has "generation 1 started \(pid [0-9]+, its keeper pid $keeper\)"
  # The daemons' parent is the keeper (orphans re-parent to it, not to baton); the worker's is the main process.
  local k
  for k in daemon envclear overwrite renamed; do
    assert_equal "$(ps -o ppid= -p "$(cat "$T/left/gen1.$k")" | tr -d ' ')" "$keeper"
  done
  assert_equal "$(ps -o ppid= -p "$(cat "$T/left/gen1.worker")" | tr -d ' ')" \
    "$(status_get "d['generations'][0]['pid']")"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  all_gone 1
}

@test "never: a SIGKILL of the main process leaves nothing of the generation; baton exits 137" {
  start_leaver
  wait_for counts 1 6
  local main
  main=$(status_get "d['generations'][0]['pid']")
  kill -KILL "$main"
  baton_wait_exit
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 137
  all_gone 1
  log_has "generation 1: the processes under its keeper \(pid [0-9]+\) outlived stop.timeout, sending SIGKILL"
}

@test "never: a reload keeps the new generation's daemons (issue 19's reproduction) and ends the old one's" {
  # The issue's own program first: a setsid daemon with a cleared environment, readiness by delay.
  baton_start run --set program.cgroup=never --set control.socket="$CTL" --set readiness.type=delay \
    --set readiness.delay=1s -- sh -c 'setsid -f env -i sleep 1234; exec sleep 100000'
  wait_for test -S "$CTL"
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for counts 2 2
  wait_for one_generation
  local n
  n=$(pgrep -cx -f "sleep 1234" || true)
  assert_equal "$n" 1
  baton_stop
  assert_equal "$BATON_STATUS" 0
  n=$(pgrep -cx -f "sleep 1234" || true)
  assert_equal "$n" 0
  # The five kinds: generation 2's live on, generation 1's are gone, within stop.timeout.
  start_leaver
  wait_for counts 1 6
  reload_keeps_new
  baton_stop
  assert_equal "$BATON_STATUS" 0
  all_gone 2
}

@test "never: a process that sets BATON_GENERATION=2 still belongs to generation 1; three daemons count 4 at once" {
  # Generation 1 starts three setsid daemons; one of them claims to be generation 2's.
  prog="setsid -f sleep 1201; setsid -f sleep 1202; BATON_GENERATION=2 setsid -f sleep 1203; exec sleep 100000"
  baton_start run --set program.cgroup=never --set control.socket="$CTL" --set readiness.type=delay \
    --set readiness.delay=500ms --set stop.timeout=2s -- sh -c "$prog"
  wait_for test -S "$CTL"
  wait_for counts 1 4
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  # Generation 1 is stopped whole, the liar too; generation 2 has its own three.
  wait_for one_generation
  wait_for counts 2 4
  assert_equal "$(pgrep -cx -f "sleep 1203")" 1
  local liar
  liar=$(pgrep -x -f "sleep 1203")
  # The one alive is generation 2's own (its BATON_GENERATION is 2 too): its parent is generation 2's keeper.
  local keeper2
  keeper2=$(children_of "$BATON_PID")
  assert_equal "$(ps -o ppid= -p "$liar" | tr -d ' ')" "$keeper2"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  assert_equal "$(pgrep -cx -f "sleep 120[123]" || true)" 0
}

@test "never: baton stop during a reload's drain returns within stop.timeout and leaves nothing of either generation" {
  STOP_TIMEOUT=3s start_leaver
  wait_for counts 1 6
  # Generation 1 is being stopped (its worker ignores SIGTERM) when the stop comes.
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  wait_for all_recorded 2
  timed_stop
  echo "stopped in ${ms}ms"
  ((ms < 4500)) || fail "baton stop took ${ms}ms, stop.timeout is 3s"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  all_gone 1
  all_gone 2
}

@test "never: a notify message counts only from the keeper's subtree; a process outside it is not heard" {
  # The program's setsid'd grandchild sends READY=1: it is generation 1's (a descendant of its keeper).
  baton_start run --log-level debug --set program.cgroup=never --set control.socket="$CTL" \
    --set readiness.type=notify --set readiness.timeout=20s -- \
    sh -c 'setsid -f sh -c "sleep 0.2; exec systemd-notify --ready --status=daemon"; exec sleep 100000'
  wait_log "generation 1 is ready"
  # Someone else, with the generation's NOTIFY_SOCKET and BATON_GENERATION in its environment, is not heard.
  local main env
  main=$(status_get "d['generations'][0]['pid']")
  env=$(tr '\0' '\n' <"/proc/$main/environ" | grep -E '^(NOTIFY_SOCKET|BATON_GENERATION)=')
  env $env "$PYTHON" -c '
import os, socket
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"STATUS=outsider", addr)
print(os.getpid())' >"$T/outsider"
  wait_log "dropped a notify message from pid $(cat "$T/outsider"), which is not one of baton's generations"
  assert_equal "$(status_get "d['generations'][0]['status']")" daemon
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "never: what a readiness probe leaves behind is the generation's, counted and stopped with it" {
  # The probe (baton's own child, beside the keeper) daemonizes a sleep and succeeds.
  PORT=$(free_port) CFG="$T/baton.yaml"
  CFG_PROGRAM="  cgroup: never" CFG_STOP="{timeout: 2s}" \
    CFG_READINESS="{type: exec, command: [/bin/sh, -c, \"setsid -f sleep 1301\"], interval: 100ms}" \
    write_config /bin/sleep 100000
  baton_start run -c "$CFG"
  wait_log "generation 1 is ready"
  wait_for counts 1 2
  assert_equal "$(pgrep -cx -f "sleep 1301")" 1
  baton_stop
  assert_equal "$BATON_STATUS" 0
  assert_equal "$(pgrep -cx -f "sleep 1301" || true)" 0
}

@test "never: the program's PID is its own, not its keeper's: status shows it and LISTEN_PID names it" {
  local port
  port=$(free_port)
  baton_start run --set program.cgroup=never --set control.socket="$CTL" -l "web=tcp://127.0.0.1:$port" -- \
    sh -c "echo \$LISTEN_PID \$\$ >$T/pids.tmp && mv $T/pids.tmp $T/listen; exec sleep 100000"
  wait_for test -s "$T/listen"
  local listen_pid self main keeper
  read -r listen_pid self <"$T/listen"
  main=$(status_get "d['generations'][0]['pid']")
  keeper=$(children_of "$BATON_PID")
  assert_equal "$listen_pid" "$self"
  assert_equal "$main" "$self"
  assert_equal "$(ps -o ppid= -p "$main" | tr -d ' ')" "$keeper"
  [[ "$keeper" != "$main" ]]
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "never: a pid-file generation whose launcher left nothing fails at once, not at readiness.timeout" {
  PORT=$(free_port) CFG="$T/baton.yaml"
  CFG_PROGRAM="  cgroup: never" \
    CFG_READINESS="{type: pidfile, pid-file: \"$T/never.pid\", interval: 100ms, timeout: 60s}" \
    write_config /bin/sh -c 'exit 0'
  local t0=$SECONDS
  run --separate-stderr timeout 30 "$BATON" run -c "$CFG"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 102
  stderr_has "nothing is left under its keeper: no daemon is left to become ready"
  ((SECONDS - t0 < 20)) || fail "it took $((SECONDS - t0))s"
}

# ---- the keeper's edges: killed from outside; a MAINPID= handover under it ----

@test "never: the keeper killed from outside: baton says so, the generation's processes are adopted, counted and stopped" {
  # The main process ignores its parent-death signal (stop.signal, SIGTERM): it outlives its keeper.
  STOP_TIMEOUT=2s LEAVER_MODE=ignore-term start_leaver
  wait_for counts 1 6
  kill_keeper
  wait_log "generation 1: its keeper \(pid $keeper\) died; its processes are baton's orphans now"
  # Everything the keeper held is baton's child now, and still the generation's: counted, 6 of 6.
  wait_for counts 1 6
  all_alive 1
  alive "$main"
  assert_equal "$(status_get "d['state']")" running
  # stop: SIGTERM is ignored by the main process and the worker; SIGKILL at stop.timeout reaches everything.
  timed_stop
  ((ms < 4000)) || fail "baton stop took ${ms}ms, stop.timeout is 2s"
  baton_wait_exit
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 0
  all_gone 1
  wait_gone "$main"
}

@test "never: the keeper killed from outside: its program gets its parent-death signal, nothing is left, baton exits with it" {
  start_leaver
  wait_for counts 1 6
  kill_keeper
  baton_wait_exit
  cat "$BATON_LOG"
  log_has "generation 1: its keeper \(pid $keeper\) died"
  # Quick use: the program's own status (SIGTERM, its parent-death signal), as restart.policy never says.
  assert_equal "$BATON_STATUS" 143
  all_gone 1
  pid_gone "$main"
}

@test "never: a replaced generation's keeper killed while it drains: what is left is adopted and stopped, not dropped" {
  STOP_TIMEOUT=3s start_leaver
  wait_for counts 1 6
  local keeper1
  keeper1=$(children_of "$BATON_PID")
  run timeout 20 "$BATON" reload --control "$CTL"
  assert_success
  # Generation 1 drains: its worker ignores SIGTERM, SIGKILL comes at stop.timeout.
  wait_for one_generation
  wait_log "generation 1 ended, but its keeper \(pid $keeper1\) still has processes"
  kill -KILL "$keeper1"
  wait_log "generation 1: its keeper \(pid $keeper1\) was killed; what is left of it is baton's orphans now"
  local worker
  worker=$(cat "$T/left/gen1.worker")
  alive "$worker"
  run log_has "generation 1: nothing is left of it"
  assert_failure
  # stop.timeout ends it, whole.
  wait_log "generation 1: process group [0-9]+ or its orphans outlived stop.timeout, sending SIGKILL"
  wait_gone "$worker"
  all_gone 1
  all_alive 2
  baton_stop
  assert_equal "$BATON_STATUS" 0
  all_gone 2
}

@test "never: MAINPID= naming a setsid daemon of the generation, then the old main exits: baton follows it, counts stay exact, stop ends all" {
  # Each process records its pid in $T/left (the teardown kills what a failed test left).
  local prog
  prog=$(py_child handover <<'PY'
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
def record(name):
    with open(out + "/." + name, "w") as f:
        f.write(str(os.getpid()))
    os.rename(out + "/." + name, out + "/" + name)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        # The daemon, the new main process, with a worker that ignores SIGTERM.
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            record("worker")
            os.execv("/bin/sleep", ["sleep", "1401"])
        record("daemon")
        os.execv("/bin/sleep", ["sleep", "1402"])
    os._exit(0)
os.wait()
wait_file(out + "/worker")
wait_file(out + "/daemon")
notify("READY=1\nMAINPID=" + open(out + "/daemon").read())
record("old")
wait_file(out + "/../go")
PY
)
  baton_start run --log-level info --set program.cgroup=never --set control.socket="$CTL" \
    --set readiness.type=notify --set stop.timeout=2s -- "$PYTHON" "$prog" "$T/left"
  wait_log "generation 1 is ready"
  wait_for test -s "$T/left/old"
  local old daemon worker
  old=$(cat "$T/left/old")
  worker=$(cat "$T/left/worker")
  daemon=$(cat "$T/left/daemon")
  wait_log "generation 1: its main process is now pid $daemon \(MAINPID= from pid $old; was pid $old\)"
  wait_for counts 1 3
  # The old main process exits 0: the generation lives on, with the daemon as its main process.
  touch "$T/go"
  wait_gone "$old"
  wait_for counts 1 2
  assert_equal "$(status_get "[(g['generation'], g['pid']) for g in d['generations']]")" "[[1, $daemon]]"
  assert_equal "$(status_get "d['state']")" running
  run log_has "generation 1 \(pid [0-9]+\) exited"
  assert_failure
  baton_stop
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 0
  log_has "stopping generation 1 \(pid $daemon\) with SIGTERM"
  # The worker ignored SIGTERM: killed at stop.timeout, with nothing else named (the old main's pid is nobody's).
  log_has "generation 1: the processes under its keeper \(pid [0-9]+\) outlived stop.timeout, sending SIGKILL"
  run log_has "killing pid $old"
  assert_failure
  pid_gone "$daemon"
  pid_gone "$worker"
}

# With KEEPER_EXEC_FDS (64) listeners or more, a keeper is not a fork of baton: made in baton's memory as spawn.c makes
# a child, it spawns the program and execs baton's binary (keeper.h; a fork would make a large baton's memory
# copy-on-write at each reload). The same membership, proven on that keeper too. N unix listeners in $T:
listen_many() {
  local i
  for ((i = 1; i <= $1; i++)); do printf -- '--listen\nl%d=unix:%s/l%d.sock\n' "$i" "$T" "$i"; done
}
# A leaver with N unix listeners, counted 6 of 6; sets keeper (baton's one child).
start_many() {
  local many
  mapfile -t many < <(listen_many "$1")
  start_leaver "${many[@]}"
  wait_for counts 1 6
  keeper=$(children_of "$BATON_PID")
  [[ "$(wc -w <<<"$keeper")" == 1 ]] || fail "baton has children $keeper (one keeper expected)"
}
# The keeper pid is a fresh image of baton's binary: its initial environment is BATON_KEEPER=... alone, not baton's.
exec_keeper() { [[ "$(tr '\0' '\n' <"/proc/$1/environ")" =~ ^BATON_KEEPER=[0-9]+\ [0-9]+\ -?[0-9]+\ $BATON_PID$ ]]; }

@test "never, 64 listeners: the keeper is baton's binary exec'd; leftovers counted 6 of 6 under it, a reload keeps the new ones, stop ends all" {
  local keeper k
  start_many 64
  exec_keeper "$keeper" || fail "keeper $keeper has the environment: $(tr '\0' ' ' <"/proc/$keeper/environ")"
  assert_equal "$(cat "/proc/$keeper/comm")" baton-keeper
  assert_equal "$(readlink "/proc/$keeper/exe")" "$(readlink -f "$BATON")"
  # Nothing of baton's but its socket to baton: no listener, no notify or control socket.
  assert_equal "$(find "/proc/$keeper/fd" -mindepth 1 | wc -l)" 4
  log_has "generation 1 started \(pid [0-9]+, its keeper pid $keeper\)"
  for k in daemon envclear overwrite renamed; do
    assert_equal "$(ps -o ppid= -p "$(cat "$T/left/gen1.$k")" | tr -d ' ')" "$keeper"
  done
  # The program has the 64 listeners.
  [[ "$(tr '\0' '\n' <"/proc/$(status_get "d['generations'][0]['pid']")/environ")" == *$'\nLISTEN_FDS=64\n'* ]]
  reload_keeps_new
  keeper=$(children_of "$BATON_PID")
  exec_keeper "$keeper"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  all_gone 2
}

@test "never, 64 listeners: the exec'd keeper killed from outside: its program still gets its parent-death signal, nothing is left" {
  start_many 64
  exec_keeper "$keeper"
  kill_keeper
  baton_wait_exit
  log_has "generation 1: its keeper \(pid $keeper\) died"
  assert_equal "$BATON_STATUS" 143
  all_gone 1
  pid_gone "$main"
}

@test "never, 63 listeners: the keeper is still a fork of baton (baton's environment), and works the same" {
  local keeper
  start_many 63
  run exec_keeper "$keeper"
  assert_failure
  assert_equal "$(cat "/proc/$keeper/comm")" baton-keeper
  baton_stop
  assert_equal "$BATON_STATUS" 0
  all_gone 1
}

@test "BATON_KEEPER set by someone else means nothing, also with argv[0] baton-keeper: baton runs as asked, its program does not see it" {
  BATON_LOG="$T/baton.log"
  # As an exec'd keeper is started, but not by baton: no subreaper, no seqpacket socket, another parent.
  (BATON_KEEPER="3 $$ -1 $$" exec -a baton-keeper "$BATON" run --set program.cgroup=never \
    --set control.socket="$CTL" -- sh -c 'env > "$0"; exec sleep 100000' "$T/env") >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  wait_for test -s "$T/env"
  run grep -c '^BATON_KEEPER=' "$T/env"
  assert_output 0
  grep -q '^BATON_GENERATION=1$' "$T/env"
  assert_equal "$(status_get "d['generations'][0]['generation']")" 1
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "never, 64 listeners: a keeper whose exec fails kills the program it spawned; the start fails saying why, nothing is left" {
  : "${BATON_KEEPER_EXEC_FAILS:?}"
  mapfile -t many < <(listen_many 64)
  BATON_LOG="$T/baton.log"
  "$BATON_KEEPER_EXEC_FAILS" run --set program.cgroup=never "${many[@]}" \
    -- sh -c 'echo $$ > "$0"; exec sleep 100000' "$T/program.pid" >"$BATON_LOG" 2>&1 &
  BATON_PID=$!
  track_pid "$BATON_PID"
  baton_wait_exit
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 102
  log_has "keeper: exec /nonexistent/baton-keeper: No such file or directory"
  # The program was spawned (the keeper execs only then), and is gone with it: no process has its command line
  # (it may have been killed before it could write its pid file); no socket file is left.
  run pgrep -f "$T/program.pid"
  assert_failure
  run find "$T" -maxdepth 1 -name 'l*.sock'
  assert_output ''
}

@test "never, 64 listeners: baton upgrade keeps the exec'd keeper and what it holds; a reload and a stop after it work" {
  local keeper
  start_many 64
  exec_keeper "$keeper"
  run timeout 30 "$BATON" upgrade --control "$CTL"
  assert_success
  assert_output --partial "(pid $BATON_PID, upgrade 1)"
  # The same keeper, still reporting to baton: the generation is counted 6 of 6 through it.
  assert_equal "$(children_of "$BATON_PID")" "$keeper"
  wait_for counts 1 6
  reload_keeps_new
  exec_keeper "$(children_of "$BATON_PID")"
  baton_stop
  assert_equal "$BATON_STATUS" 0
  all_gone 2
}

@test "never, 64 listeners: baton killed with SIGKILL: the exec'd keeper dies with it (its parent-death signal survives its exec), and so does the program" {
  local keeper main
  start_many 64
  exec_keeper "$keeper"
  main=$(status_get "d['generations'][0]['pid']")
  track_pid "$main"
  kill -KILL "$BATON_PID"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 137
  wait_gone "$keeper"
  wait_gone "$main"
}
