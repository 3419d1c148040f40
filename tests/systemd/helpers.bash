# Helpers for the tests under a real systemd: one container per bats file, booted by systemd-nspawn with systemd as
# its PID 1, reached with nsenter. The container's / is a tmpfs with the /usr of CT_ROOT read-only (--volatile=yes),
# its own network namespace (only its own loopback), and these binds:
#   $CT_DIR/bin        -> /usr/local/bin (read-only): baton and baton-demo from the build tree ($BATON, $BATON_DEMO),
#                         at the paths the shipped units use
#   $CT_DIR/etc-baton  -> /etc/baton (read-write): the shipped configs; a test rewrites them from the host side
#   $CT_DIR/units      -> /baton-units (read-only): the shipped units, copied to /etc/systemd/system inside
#   $CT_DIR/builds     -> /baton-builds (read-only): the test builds of baton for `baton upgrade`, each named baton in
#                         a directory of its own (so that the upgraded process is still "baton" in ps and comm):
#                         next/baton ($BATON_NEXT), v999/baton ($BATON_V999), takeover-fails/baton
#                         ($BATON_TAKEOVER_FAILS)
# The units and configs are contrib/systemd/ as written.

# wait_for, WAIT_SECONDS (30 s) and PYTHON come from tests/lib/common.bash, shared with tests/bats.
load "${BATS_TEST_DIRNAME}/../lib/common.bash"

: "${BATON:?BATON must point at the built baton binary (meson test sets it)}"
: "${BATON_DEMO:?BATON_DEMO must point at the built baton-demo binary (meson test sets it)}"
: "${BATON_NEXT:?BATON_NEXT must point at the test build baton-next (meson test sets it)}"
: "${BATON_V999:?BATON_V999 must point at the test build baton-v999 (meson test sets it)}"
: "${BATON_TAKEOVER_FAILS:?BATON_TAKEOVER_FAILS must point at the test build baton-takeover-fails (meson test sets it)}"
# How long the container may take to boot before the file fails (about 1.3 s for the host's root here, 2 s for
# Debian 13's; more while the machine is busy).
: "${CT_BOOT_SECONDS:=60}"
# The OS tree the container boots: the host's own / (its systemd, 252 on Debian 12) by default, or another root,
# e.g. Debian 13's with systemd 257: CT_ROOT=$(tests/systemd/trixie-root.sh) (meson test 'systemd-257').
: "${CT_ROOT:=/}"

CONTRIB_SYSTEMD="$(cd "$BATS_TEST_DIRNAME/../../contrib/systemd" && pwd)"


# Says why this machine cannot run the tests, on stderr and on fd 3 (bats' own output, so that it shows even
# without --print-errorlogs), and fails. Never a skip: a machine that cannot boot the container fails these tests.
ct_cannot() {
  local msg="systemd tests: CANNOT RUN: $*"
  echo "$msg" >&2
  echo "# $msg" >&3
  return 1
}

# Boots the container (setup_file). Exports CT_DIR, CT_NSPAWN (systemd-nspawn's pid) and CT_LEADER (the
# container's PID 1, as a host pid). Fails loudly, with the reason, when the container does not boot within
# CT_BOOT_SECONDS.
ct_boot() {
  [[ "$(id -u)" == 0 ]] || { ct_cannot "they need root (systemd-nspawn, nsenter)"; return 1; }
  command -v systemd-nspawn >/dev/null || { ct_cannot "systemd-nspawn not found (apt-get install systemd-container)"; return 1; }
  command -v nsenter >/dev/null || { ct_cannot "nsenter not found (apt-get install util-linux)"; return 1; }
  [[ -z "${CT_ROOT_ERROR:-}" ]] || { ct_cannot "$CT_ROOT_ERROR"; return 1; }
  [[ -d "$CT_ROOT" ]] || { ct_cannot "CT_ROOT=$CT_ROOT is not a directory"; return 1; }
  [[ -x "$CT_ROOT/usr/lib/systemd/systemd" || -x "$CT_ROOT/lib/systemd/systemd" ]] ||
    { ct_cannot "no $CT_ROOT/usr/lib/systemd/systemd to boot (apt-get install systemd)"; return 1; }

  export CT_DIR="$BATS_FILE_TMPDIR/ct"
  mkdir -p "$CT_DIR/bin" "$CT_DIR/etc-baton" "$CT_DIR/units" "$CT_DIR/builds"/{next,v999,takeover-fails}
  # The bind mounts keep these modes: the program runs as nobody, the hardened unit as a dynamic user.
  chmod 755 "$CT_DIR" "$CT_DIR/bin" "$CT_DIR/etc-baton" "$CT_DIR/units" "$CT_DIR/builds" "$CT_DIR/builds"/*
  install -m 755 "$BATON" "$CT_DIR/bin/baton"
  install -m 755 "$BATON_DEMO" "$CT_DIR/bin/baton-demo"
  install -m 644 "$CONTRIB_SYSTEMD"/*.service "$CONTRIB_SYSTEMD"/*.socket "$CT_DIR/units/"
  install -m 644 "$CONTRIB_SYSTEMD"/*.yaml "$CT_DIR/etc-baton/"
  install -m 644 "$BATS_TEST_DIRNAME/syscall-probe.py" "$CT_DIR/bin/syscall-probe.py"
  install -m 755 "$BATON_NEXT" "$CT_DIR/builds/next/baton"
  install -m 755 "$BATON_V999" "$CT_DIR/builds/v999/baton"
  install -m 755 "$BATON_TAKEOVER_FAILS" "$CT_DIR/builds/takeover-fails/baton"

  local name="baton-test-$$"
  # A sanitizer build (tests/run.sh --sanitize) gets its options inside too: systemd.setenv= on systemd's command
  # line goes into every unit's environment. Leak detection is off in there: LeakSanitizer needs ptrace(2), which
  # baton-hardened.service's system call filter refuses; the integration suite checks baton for leaks.
  # basic.target, not multi-user.target: the container may boot the host's own /, and daemons installed there (the
  # unmodified-program tests install nginx, redis, memcached, lighttpd) must not start and hold up the boot.
  local boot_args=(systemd.firstboot=off systemd.unit=basic.target)
  if [[ -n "${ASAN_OPTIONS:-}" ]] || ldd "$BATON" 2>/dev/null | grep -q libasan; then
    boot_args+=("systemd.setenv=ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
  fi
  [[ -z "${UBSAN_OPTIONS:-}" ]] || boot_args+=("systemd.setenv=UBSAN_OPTIONS=$UBSAN_OPTIONS")
  # Another root boots with the pure cgroup v2 layout of a Debian 13 machine (systemd 256 and later deprecate v1;
  # on a host with v1 controllers, nspawn would otherwise give the container the hybrid layout). The host's own root
  # keeps nspawn's choice.
  local nspawn_env=()
  [[ -n "${SYSTEMD_NSPAWN_UNIFIED_HIERARCHY:-}" || "$(realpath "$CT_ROOT")" == / ]] ||
    nspawn_env=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1)
  # stdin from /dev/null: systemd-nspawn then does not take over a terminal; fd 3 closed so that bats does not
  # wait for the container.
  env "${nspawn_env[@]}" systemd-nspawn -D "$CT_ROOT" --volatile=yes --register=no --keep-unit \
    --private-network --machine="$name" \
    --bind-ro="$CT_DIR/bin:/usr/local/bin" --bind="$CT_DIR/etc-baton:/etc/baton" \
    --bind-ro="$CT_DIR/units:/baton-units" --bind-ro="$CT_DIR/builds:/baton-builds" \
    -b -- "${boot_args[@]}" </dev/null >"$CT_DIR/console.log" 2>&1 3>&- &
  export CT_NSPAWN=$!
  echo "$CT_NSPAWN" >"$CT_DIR/nspawn.pid"

  local deadline=$((SECONDS + CT_BOOT_SECONDS)) pid comm state=""
  CT_LEADER=""
  while ((SECONDS < deadline)); do
    if ! kill -0 "$CT_NSPAWN" 2>/dev/null; then
      ct_cannot "systemd-nspawn exited before the container booted; its output:$(printf '\n'; tail -n 20 "$CT_DIR/console.log")"
      return 1
    fi
    if [[ -z "$CT_LEADER" ]]; then
      while read -r pid comm; do
        [[ "$comm" == systemd ]] && CT_LEADER=$pid
      done < <(ps -o pid=,comm= --ppid "$CT_NSPAWN")
      [[ -n "$CT_LEADER" ]] && echo "$CT_LEADER" >"$CT_DIR/leader.pid"
    fi
    if [[ -n "$CT_LEADER" ]]; then
      # nsenter's own complaint (no CAP_SYS_ADMIN, setns refused) is kept for the message below.
      state=$(timeout 2 nsenter -t "$CT_LEADER" -a systemctl is-system-running 2>"$CT_DIR/nsenter.err") || true
      [[ "$state" == running || "$state" == degraded ]] && break
    fi
    sleep 0.1
  done
  export CT_LEADER
  if [[ "$state" != running && "$state" != degraded ]]; then
    ct_cannot "the container did not boot within ${CT_BOOT_SECONDS}s (leader pid '${CT_LEADER}'," \
      "system state '${state}'; nsenter said: '$(tail -n 3 "$CT_DIR/nsenter.err" 2>/dev/null)');" \
      "systemd-nspawn's output:$(printf '\n'; tail -n 20 "$CT_DIR/console.log")"
    return 1
  fi
  ct_preflight || return 1

  ct cp -r /baton-units/. /etc/systemd/system/
  sctl daemon-reload
  CT_SYSTEMD_VERSION=$(ct systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
  export CT_SYSTEMD_VERSION
  # Which systemd the file ran against, in the TAP output.
  echo "# container: $(ct systemctl --version | head -n1), root $CT_ROOT" >&3
}

# What the tests need from the booted container beyond booting, checked once so that a machine that cannot run them
# fails with the reason instead of a bare curl error or EPERM in some test:
# - its loopback is up: systemd-nspawn --private-network gives the container its own lo, which the container's
#   systemd brings up; a nested systemd-nspawn without CAP_NET_ADMIN (inside another container, e.g.
#   /work/shared/tools/fresh-debian without --vm) leaves it down, and every connection to 127.0.0.1 fails;
# - the system calls baton uses (pidfd_open, pidfd_send_signal, close_range, signalfd, timerfd, the child
#   subreaper, SO_PASSCRED) are allowed where units run: the probe runs as a transient unit in there, under every
#   seccomp filter the units are under (systemd-nspawn's own, and that of a container the tests themselves run in).
#   pidfd_getfd is refused in every nspawn container (its filter allows no @debug call): reported, not required.
ct_preflight() {
  # baton and baton-demo are the build tree's, linked on the host: another root must have their libraries (a
  # sanitizer build needs libasan/libubsan of the host's compiler, which Debian 13's minimal root lacks).
  local missing
  missing=$(ct ldd /usr/local/bin/baton /usr/local/bin/baton-demo /baton-builds/{next,v999,takeover-fails}/baton 2>&1 |
    grep -e 'not found' -e '^ldd:')
  if [[ -n "$missing" ]]; then
    ct_cannot "the build's baton cannot run in the container's root ($CT_ROOT): $(tr '\n' ';' <<<"$missing")"
    return 1
  fi
  local lo
  lo=$(ct ip -o link show lo 2>&1) || { ct_cannot "'ip -o link show lo' failed in the container: $lo"; return 1; }
  if [[ "$lo" != *"<LOOPBACK,"*"UP"*">"* ]]; then
    ct_cannot "the container's loopback is down ($lo): systemd-nspawn --private-network needs CAP_NET_ADMIN to" \
      "bring it up, which a nested container lacks (run on a machine or VM, e.g. fresh-debian --vm)"
    return 1
  fi
  if ! ct_net "$PYTHON" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
socket.create_connection(s.getsockname(), timeout=2).close()' 2>"$CT_DIR/loopback.err"; then
    ct_cannot "no TCP connection on 127.0.0.1 in the container's network namespace:" \
      "$(tail -n 1 "$CT_DIR/loopback.err")"
    return 1
  fi
  # Not --quiet: when a filter kills the probe (SIGSYS) instead of failing the call, systemd-run's summary says so.
  local out rc=0
  out=$(ct timeout 30 systemd-run --wait --pipe --collect --service-type=exec --unit=baton-syscall-probe \
    /usr/bin/python3 /usr/local/bin/syscall-probe.py 2>&1) || rc=$?
  if ((rc != 0)); then
    ct_cannot "system calls or sockets the tests need are refused in the container (a seccomp filter?); the probe" \
      "(tests/systemd/syscall-probe.py, run as a unit in there) exited with $rc:" \
      "$(grep -v -e '^ok ' -e '^Running as unit' <<<"$out" | tr '\n' ';')"
    return 1
  fi
  local note
  while read -r note; do echo "# container: $note" >&3; done < <(grep '^note: ' <<<"$out")
}

# Ends the container (teardown_file): SIGKILL to its PID 1 ends every process in it; then systemd-nspawn exits.
# Also after a failed boot: the leader is then looked up again (it may have come up late).
ct_kill() {
  local nspawn leader="" deadline
  nspawn=$(cat "$BATS_FILE_TMPDIR/ct/nspawn.pid" 2>/dev/null) || return 0
  [[ -s "$BATS_FILE_TMPDIR/ct/leader.pid" ]] && leader=$(cat "$BATS_FILE_TMPDIR/ct/leader.pid")
  deadline=$((SECONDS + 5))
  while [[ -z "$leader" ]] && kill -0 "$nspawn" 2>/dev/null && ((SECONDS < deadline)); do
    leader=$(ps -o pid= --ppid "$nspawn" | head -n1 | tr -d ' ')
    [[ -n "$leader" ]] || sleep 0.05
  done
  [[ -z "$leader" ]] || kill -KILL "$leader" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while kill -0 "$nspawn" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  if kill -0 "$nspawn" 2>/dev/null; then
    echo "systemd-nspawn (pid $nspawn) still runs 15s after its container's PID 1 (pid ${leader:-unknown}) was" \
      "killed; killing it" >&2
    kill -KILL "$nspawn" 2>/dev/null || true
  fi
  wait "$nspawn" 2>/dev/null || true
}

# A command inside the container (every namespace: its file system, pids, network, cgroups).
ct() { nsenter -t "$CT_LEADER" -a "$@"; }
sctl() { ct systemctl --no-pager "$@"; }
# One property of a unit: prop UNIT PROPERTY
prop() { sctl show -p "$2" --value "$1"; }
# A host command in the container's network namespace only (the host's file system, so the host's curl/python).
ct_net() { nsenter -t "$CT_LEADER" -n "$@"; }
# The demo's answer on 127.0.0.1:PORT inside the container: "hello from baton-demo pid=N generation=G".
ct_answer() { ct_net curl -fsS --max-time 5 "http://127.0.0.1:$1/"; }
ct_answer_pid() { ct_answer "$1" | sed -n 's/.* pid=\([0-9]*\) .*/\1/p'; }
ct_answer_generation() { ct_answer "$1" | sed -n 's/.* generation=\([0-9]*\).*/\1/p'; }
ct_answers() { ct_answer "$1" >/dev/null; }
# The name of process PID inside the container.
ct_comm() { ct cat "/proc/$1/comm"; }
# The parent of process PID inside the container.
ct_ppid() { ct ps -o ppid= -p "$1" | tr -d ' '; }

unit_state_is() { [[ "$(prop "$1" ActiveState)" == "$2" ]]; }
# Waits until UNIT is in ActiveState STATE.
wait_state() { wait_for unit_state_is "$1" "$2"; }

# The unit's journal (for failure output).
journal() { ct journalctl --no-pager -o short-monotonic -u "$1"; }

# Rewrites /etc/baton/NAME.yaml inside the container (through the host side of its bind): ct_config NAME < YAML
ct_config() { cat >"$CT_DIR/etc-baton/$1.yaml"; }
# Puts back the shipped /etc/baton/NAME.yaml.
ct_config_restore() { install -m 644 "$CONTRIB_SYSTEMD/$1.yaml" "$CT_DIR/etc-baton/$1.yaml"; }

# The TCP sockets listening on 127.0.0.1:PORT inside the container, as `ss -Hltnp` prints them.
ct_listening() { ct ss -Hltnp "( sport = :$1 )"; }

# Stops UNITs quietly, for teardown: a test that failed midway must not leave its unit to the next one.
ct_stop_all() { sctl stop "$@" >/dev/null 2>&1 || true; sctl reset-failed "$@" >/dev/null 2>&1 || true; }

# A client inside the container's network namespace that connects to 127.0.0.1:PORT, sends one GET and reads the
# whole answer, one connection at a time, until $BATS_TEST_TMPDIR/NAME.stop exists: client_loop_start NAME PORT.
# One line per request in NAME.log: "ok GENERATION" or "fail WHY". 2 ms between requests: some hundreds a second,
# several during each reload's switch-over, without taking a CPU to itself. Returns once generation 1 has answered.
client_loop_start() {
  local name=$1 port=$2
  ct_net "$PYTHON" "$TESTS_DIR/programs/client-loop.py" "$port" "$BATS_TEST_TMPDIR/$name.stop" demo 0.002 \
    >"$BATS_TEST_TMPDIR/$name.log" 2>&1 3>&- &
  eval "CLIENT_LOOP_PID_$name=$!"
  echo $! >>"$BATS_TEST_TMPDIR/pids"
  wait_for client_loop_saw "$name" 1
}
client_loop_stop() {
  local name=$1 pid_var="CLIENT_LOOP_PID_$1" rc=0
  touch "$BATS_TEST_TMPDIR/$name.stop"
  wait "${!pid_var}" || rc=$?
  return "$rc"
}
# Stops loop NAME and asserts that none of its requests failed and that it made more than 10: the count goes to the
# TAP output, the first failures (if any) to stderr.
client_loop_no_failure() {
  local fails oks
  client_loop_stop "$1"
  fails=$(client_loop_count "$1" fail)
  oks=$(client_loop_count "$1" ok)
  echo "# client loop: $oks ok, $fails failed" >&3
  grep '^fail' "$BATS_TEST_TMPDIR/$1.log" | head -n 5 >&2 || true
  assert_equal "$fails" 0
  ((oks > 10))
}
client_loop_lines() { wc -l <"$BATS_TEST_TMPDIR/$1.log"; }

# Ends what a test started on the host side (the client loop), by pid.
teardown_processes() {
  local pid
  [[ -f "$BATS_TEST_TMPDIR/pids" ]] || return 0
  while read -r pid; do
    kill -KILL "$pid" 2>/dev/null || true
  done <"$BATS_TEST_TMPDIR/pids"
}

# The journal of one invocation of a unit: systemd's messages about it (INVOCATION_ID=) and the unit's own
# (_SYSTEMD_INVOCATION_ID=). A unit that stopped cleanly can be unloaded at once (its properties reset), so this is
# where its outcome stays.
journal_invocation() {
  [[ -n "$1" ]] || { echo "journal_invocation: no invocation id" >&2; return 1; }
  ct journalctl --no-pager -o short-monotonic "_SYSTEMD_INVOCATION_ID=$1" + "INVOCATION_ID=$1"
}
journal_invocation_has() { journal_invocation "$1" | grep -qF -- "$2"; }

# The inode of the socket listening on 127.0.0.1:PORT inside the container (the same socket keeps its inode).
ct_listen_inode() { ct ss -Hltne "( sport = :$1 )" | sed -n 's/.* ino:\([0-9]*\).*/\1/p' | head -n1; }
# A unit's MainPID differs from OLD and is a live baton.
main_pid_changed() {
  local main
  main=$(prop "$1" MainPID)
  [[ "$main" != 0 && "$main" != "$2" && "$(ct_comm "$main")" == baton ]]
}
# The unit's journal (all invocations) has STRING.
journal_has() { journal "$1" | grep -qF -- "$2"; }
# A systemd property's value changed from OLD: prop_changed UNIT PROPERTY OLD
prop_changed() { [[ "$(prop "$1" "$2")" != "$3" ]]; }

# ---- baton upgrade

# Replaces /usr/local/bin/baton in the container by the binary FILE (a host path), the way dpkg does: written beside
# it, then renamed over it. A baton running the old file keeps it (its /proc/PID/exe then ends in " (deleted)").
ct_replace_baton() {
  install -m 755 "$1" "$CT_DIR/bin/.baton.new"
  mv -f "$CT_DIR/bin/.baton.new" "$CT_DIR/bin/baton"
}
# Puts the build's baton back at /usr/local/bin/baton (teardown).
ct_baton_restore() { [[ ! -d "${CT_DIR:-}/bin" ]] || ct_replace_baton "$BATON"; }
# The binary process PID runs, inside the container: "/usr/local/bin/baton", or with " (deleted)" once replaced.
ct_exe() { ct readlink "/proc/$1/exe"; }

# A cursor of the container's journal, now: journal messages after it are read with journal_since CURSOR UNIT.
journal_cursor() { ct journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'; }
journal_since() { ct journalctl --no-pager -o short-monotonic --after-cursor="$1" -u "$2"; }
# The notify messages systemd got from PID since CURSOR about UNIT, one a line ("READY=1, STATUS=..."): systemd logs
# each at debug level (service_notify_message() in src/core/service.c), so only while the log level is debug;
# 252 as "Got notification message from PID N (TAGS)", 257 as "... from PID N: TAGS".
notify_messages_since() {
  journal_since "$1" "$2" | sed -En "s/.*Got notification message from PID $3( \((.*)\)|: (.*))\$/\2\3/p"
}
notify_message_since() { notify_messages_since "$1" "$2" "$3" | grep -q -- "$4"; }
