#!/usr/bin/env bats
# baton as PID 1 of real containers: podman (rootful) with Debian's crun or runc, an image imported from a
# debootstrapped Debian root of the host's release (tests/podman/image.sh, cached under /var/tmp), the build tree's
# baton bind-mounted into it. Quick use, as a Dockerfile's ENTRYPOINT would have it: `baton run [OPTION]... --
# PROGRAM`, where baton must do what tini, dumb-init and catatonit do (stop at once, the program's exit status,
# zombies reaped, signals forwarded, the terminal) and keep each generation's processes apart without cgroups
# (inside a container they are not writable).
# Needs root and podman. Where no container can run, every test fails with "CANNOT RUN:" and the reason (the first
# lines of the TAP output say which runtime ran them): these tests never pass or skip silently.

load helpers

setup_file() {
  pm_preflight
}

setup() {
  pm_setup
}

teardown() {
  pm_teardown
}

# `podman stop` (SIGTERM to PID 1, SIGKILL after 10 s): the container ends by itself, with status 0, and before
# PM_STOP_SECONDS (9 s: a container that needed podman's SIGKILL takes 10 s, and ends with 137). The command's own
# cost is in that time (about 0.5 s on an idle machine, 1-4 s at a load average of 20 on 2 CPUs), and a program
# that ignores SIGTERM adds stop.timeout: pm_term_quick measures baton's own share.
: "${PM_STOP_SECONDS:=9}"
pm_stop_quick() {
  local t0 t1 ms
  t0=$(date +%s%N)
  pm stop -t 10 "$(pm_name "$1")" >/dev/null
  t1=$(date +%s%N)
  pm_wait "$1"
  ms=$(((t1 - t0) / 1000000))
  echo "podman stop took $ms ms; the container's exit status: $PM_STATUS"
  echo "# podman stop: $ms ms" >&3
  assert_equal "$PM_STATUS" 0
  ((ms < PM_STOP_SECONDS * 1000))
}

# SIGTERM to the container's PID 1 (what `podman stop` has the runtime send), from the host: PID 1 is gone within
# 1 s of it, and the container's exit status is 0.
pm_term_quick() {
  local ms
  ms=$(pm_term_ms "$1")
  pm_wait "$1"
  echo "SIGTERM to PID 1: gone in $ms ms; the container's exit status: $PM_STATUS"
  echo "# SIGTERM to PID 1: gone in $ms ms" >&3
  assert_equal "$PM_STATUS" 0
  ((ms < 1000))
}

# ---- podman stop ----

# Two containers of PROGRAM (which has PROCS processes once it runs), one ended by `podman stop`, one by SIGTERM to its
# PID 1 from the host: stop_both PROCS PROGRAM...
stop_both() {
  local procs=$1
  shift
  pm_start c -- baton run -- "$@"
  pm_start t -- baton run -- "$@"
  wait_for pm_count_is c "$procs"
  wait_for pm_count_is t "$procs"
  pm_term_quick t
  pm_stop_quick c
}

@test "podman stop: a program that stops on SIGTERM ends the container at once, status 0" {
  stop_both 1 sleep 100000
}

@test "podman stop: sh -c 'sleep 1000 & wait' (a worker in the program's process group) ends at once, status 0" {
  stop_both 2 sh -c 'sleep 1000 & wait'
}

@test "podman stop: a program with a setsid daemon (double fork) ends at once, status 0" {
  stop_both 2 sh -c '(setsid -f sleep 1000); exec sleep 100000'
}

# ---- exit statuses, as tini's: the program's exit is the container's ----

@test "quick use: the program's exit status 3 is the container's, and the program is not restarted" {
  pm_start c -- baton run -- sh -c 'echo run >>/out/runs; exit 3'
  pm_wait c
  assert_equal "$PM_STATUS" 3
  assert_equal "$(wc -l <"$PM_OUT/runs")" 1
}

@test "quick use: a program killed by SIGKILL ends the container with 137 (128+9), not restarted" {
  pm_start c -- baton run -- sh -c 'echo run >>/out/runs; kill -KILL $$'
  pm_wait c
  assert_equal "$PM_STATUS" 137
  assert_equal "$(wc -l <"$PM_OUT/runs")" 1
}

# ---- zombies ----

@test "100 orphaned zombies are reaped by baton as PID 1" {
  # Each (sleep 0.2 &) is orphaned at once: its subshell exits. They end as children of PID 1, which must reap them.
  pm_start c -- baton run -- sh -c 'i=0; while [ $i -lt 100 ]; do (sleep 0.2 &); i=$((i+1)); done
    echo spawned >/out/spawned; exec sleep 100000'
  wait_for test -e "$PM_OUT/spawned"
  # The program's sleep alone: every orphan ended and was reaped.
  wait_for pm_count_is c 1
  assert_equal "$(pm_zombies c)" 0
  pm_stop_quick c
}

# ---- signals ----

@test "SIGUSR1, SIGQUIT and SIGWINCH to PID 1 are forwarded to the program" {
  cat >"$PM_OUT/record.sh" <<'SH'
for s in USR1 QUIT WINCH; do trap "echo $s >>/out/signals" "$s"; done
trap 'exit 0' TERM
sleep 100000 &
echo up >/out/up
while :; do wait $!; done
SH
  pm_start c -- baton run -- bash /out/record.sh
  wait_for test -e "$PM_OUT/up"
  local sig
  for sig in USR1 QUIT WINCH; do
    pm kill --signal "$sig" "$(pm_name c)" >/dev/null
    wait_for grep -qx "$sig" "$PM_OUT/signals"
  done
  # Each once: forwarded to the main process, not also to its process group (the sleep would die of USR1).
  assert_equal "$(sort "$PM_OUT/signals" | tr '\n' ' ')" "QUIT USR1 WINCH "
  pm_stop_quick c
}

@test "SIGHUP to PID 1 reloads: a new generation replaces the old one" {
  pm_start c -- baton run -- sh -c 'echo up >/out/gen-$BATON_GENERATION; exec sleep 10000$BATON_GENERATION'
  wait_for test -e "$PM_OUT/gen-1"
  pm kill --signal HUP "$(pm_name c)" >/dev/null
  wait_for test -e "$PM_OUT/gen-2"
  wait_for pm_ps_lacks c 'sleep 100001'
  pm_ps c | grep -q 'sleep 100002$'
  pm_stop_quick c
}
pm_ps_lacks() { ! pm_ps "$1" | grep -q "$2\$"; }

# ---- the terminal: podman run -it ----

pty() { "$PYTHON" "$TESTS_DIR/programs/pty-run.py" --timeout 30 --log "$BATS_TEST_TMPDIR/pty.log" -- "$@"; }

@test "podman run -it, bash -i: Ctrl-C ends a command, Ctrl-Z stops it and fg continues it, exit 3 is the container's" {
  # RUN""NING and CONT""INUED: what the commands print, not their echo. The job of the Ctrl-Z says when it is
  # continued, so that the Ctrl-C after fg reaches it, not bash.
  run pty podman "$PM_GLOBAL" run -it --name "$(pm_name tty)" "${PM_RUN[@]}" -e PS1=PMPROMPT "$PM_IMAGE" \
    baton run -- bash --norc -i <<'SCRIPT'
expect PMPROMPT
send bash -c 'echo RUN""NING; exec sleep 1000'\r
expect RUNNING
send \x03
expect PMPROMPT
send bash -c 'trap "echo CONT""INUED" CONT; echo RUN""NING; while :; do sleep 0.1; done'\r
expect RUNNING
send \x1a
expect Stopped
send fg\r
expect CONTINUED
send \x03
expect PMPROMPT
send exit 3\r
wait
SCRIPT
  PM_NAMES+=(tty)
  echo "$output"
  assert_line "exit 3"
}

# ---- reload under load, through podman exec ----

@test "podman exec C baton reload, 3 times under a client loop: no failed request" {
  pm_start c -- baton run --listen http=tcp://127.0.0.1:8080 --set control.socket=/run/baton.sock \
    --set readiness.type=notify -- baton-demo
  wait_for pm_net c curl -fsS --max-time 2 -o /dev/null http://127.0.0.1:8080/
  pm_net c "$PYTHON" "$TESTS_DIR/programs/client-loop.py" 8080 "$BATS_TEST_TMPDIR/load.stop" demo \
    >"$BATS_TEST_TMPDIR/load.log" 2>&1 3>&- &
  local loop=$! i
  wait_for grep -qx 'ok 1' "$BATS_TEST_TMPDIR/load.log"
  for i in 1 2 3; do
    run pm_exec c baton reload --control /run/baton.sock
    assert_success
  done
  wait_for grep -qx 'ok 4' "$BATS_TEST_TMPDIR/load.log"
  touch "$BATS_TEST_TMPDIR/load.stop"
  wait "$loop"
  echo "# client loop: $(grep -c '^ok' "$BATS_TEST_TMPDIR/load.log") requests" >&3
  grep '^fail' "$BATS_TEST_TMPDIR/load.log" && return 1
  pm_stop_quick c
}

# ---- what belongs to a generation, without cgroups (issue 19's five kinds of leftovers) ----

# The program of the membership tests: it leaves behind, in generation G, a worker in its process group that
# ignores SIGTERM (sleep 20G1); a double-forked setsid daemon (sleep 20G2); the same clearing its environment and
# re-exec'ing (env -i sleep 20G3); the same overwriting its argv and environ in place (perl's $0, over both: nothing
# of BATON_GENERATION is left in /proc/PID/environ); the same re-exec'ing with another argv[0] (bash's exec -a);
# then it becomes sleep 20G0. Six processes per generation; /out/gen-G once all are started.
leftovers() {
  cat >"$PM_OUT/leftovers.sh" <<'SH'
g=$BATON_GENERATION
sh -c "trap '' TERM; exec sleep 20${g}1" &
(setsid -f sleep "20${g}2")
(setsid -f env -i sleep "20${g}3")
(setsid -f perl -e '$0 = "x" x 4096; sleep 2000000')
(setsid -f bash -c "exec -a not-sleep sleep 20${g}5")
echo started >"/out/gen-$g"
exec sleep "20${g}0"
SH
  pm_start c -- baton run --set control.socket=/run/baton.sock --set stop.timeout=1s "$@" -- sh /out/leftovers.sh
}

# Host pids of the program's processes.
pm_pids() { pm_program_ps "$1" | awk '{print $1}'; }
# None of these host pids is alive: gone PID...
gone() {
  local p
  for p in "$@"; do [[ ! -e /proc/$p ]] || return 1; done
}
# The generations in status, as [[GENERATION, PROCESSES], ...].
generations() { pm_status c '[[g["generation"], g["processes"]] for g in d["generations"]]'; }

@test "membership without cgroups: status counts all six processes of a generation, whatever they did" {
  leftovers
  wait_for test -e "$PM_OUT/gen-1"
  wait_for pm_count_is c 6
  pm_ps c
  assert_equal "$(generations)" "[[1, 6]]"
  pm_stop_quick c
}

@test "membership without cgroups: a reload stops all six of the old generation and none of the new one's" {
  # The new generation is ready 1 s after it starts: its daemons are orphans while the old generation still runs.
  leftovers --set readiness.type=delay --set readiness.delay=1s
  wait_for test -e "$PM_OUT/gen-1"
  wait_for pm_count_is c 6
  local old
  old=$(pm_pids c)
  run pm_exec c baton reload --control /run/baton.sock
  assert_success
  wait_for test -e "$PM_OUT/gen-2"
  # shellcheck disable=SC2086
  wait_for gone $old
  pm_ps c
  # The new generation's six are all there, and counted as its own.
  assert_equal "$(pm_count c)" 6
  assert_equal "$(generations)" "[[2, 6]]"
  pm_stop_quick c
}

@test "membership without cgroups: SIGKILL of the main process leaves nothing of its generation" {
  leftovers --set restart.policy=on-failure --set restart.delay=100ms
  wait_for test -e "$PM_OUT/gen-1"
  wait_for pm_count_is c 6
  local old main
  old=$(pm_pids c)
  main=$(pm_ps c | awk '$NF == "2010" {print $1}')
  [[ -n $main ]]
  kill -KILL "$main"
  wait_for test -e "$PM_OUT/gen-2"
  # shellcheck disable=SC2086
  wait_for gone $old
  pm_ps c
  assert_equal "$(pm_count c)" 6
  assert_equal "$(generations)" "[[2, 6]]"
  pm_stop_quick c
}

@test "membership without cgroups: podman exec C baton stop after a reload ends both generations, replies, exits 0" {
  PM_KEEP=1 leftovers
  wait_for test -e "$PM_OUT/gen-1"
  wait_for pm_count_is c 6
  run pm_exec c baton reload --control /run/baton.sock
  assert_success
  wait_for test -e "$PM_OUT/gen-2"
  run pm_exec c baton stop --control /run/baton.sock
  echo "$output"
  assert_success
  assert_output stopped
  pm_wait c
  assert_equal "$PM_STATUS" 0
}

@test "membership without cgroups, 64 listeners: the keeper is baton's binary exec'd afresh; a reload keeps the new six, ends the old" {
  local listen=() i
  for ((i = 1; i <= 64; i++)); do listen+=(--listen "l$i=unix:/run/l$i.sock"); done
  leftovers --set readiness.type=delay --set readiness.delay=1s "${listen[@]}"
  wait_for test -e "$PM_OUT/gen-1"
  wait_for pm_count_is c 6
  # The keeper (baton's child, named baton-keeper): its initial environment is BATON_KEEPER= alone, not baton's.
  local keeper old
  keeper=$(pm_ps c | awk -v p1="$PM_PID_c" '$2 == p1 && $4 == "baton-keeper" {print $1}')
  [[ -n $keeper ]]
  [[ "$(tr '\0' '\n' <"/proc/$keeper/environ")" =~ ^BATON_KEEPER=[0-9]+\ [0-9]+\ -?[0-9]+\ 1$ ]]
  old=$(pm_pids c)
  run pm_exec c baton reload --control /run/baton.sock
  assert_success
  wait_for test -e "$PM_OUT/gen-2"
  # shellcheck disable=SC2086
  wait_for gone $old
  assert_equal "$(pm_count c)" 6
  assert_equal "$(generations)" "[[2, 6]]"
  pm_stop_quick c
}

# ---- the stop client's reply ----

@test "podman exec C baton stop prints its reply and exits 0 (20 containers)" {
  local i
  for i in $(seq 20); do
    PM_KEEP=1 pm_start "s$i" -- baton run --set control.socket=/run/baton.sock -- sleep 100000
    wait_for pm_count_is "s$i" 1
    run pm_exec "s$i" baton stop --control /run/baton.sock
    echo "container $i: status $status, output '$output'"
    assert_success
    assert_output stopped
    pm_wait "s$i"
    assert_equal "$PM_STATUS" 0
  done
}
