# Helpers for the tests in a real container runtime: podman (rootful) with Debian's crun or runc, baton as PID 1 of
# each container. The image is a minimal Debian root of the host's release (tests/podman/image.sh: PM_IMAGE); every
# container gets, bind-mounted:
#   $BATON             -> /usr/local/bin/baton (read-only): the build tree's baton
#   $BATON_DEMO        -> /usr/local/bin/baton-demo (read-only)
#   $BATS_TEST_TMPDIR/out -> /out (read-write): where the programs leave their marks for the test to wait on
# and no network but its own loopback (--network=none); a client reaches it from the host in the container's network
# namespace (pm_net). Each test's containers are removed by its teardown, passed or not.

# wait_for, WAIT_SECONDS (30 s) and PYTHON come from tests/lib/common.bash, shared with tests/bats.
load "${BATS_TEST_DIRNAME}/../lib/common.bash"

: "${BATON:?BATON must point at the built baton binary (meson test sets it)}"
: "${BATON_DEMO:?BATON_DEMO must point at the built baton-demo binary (meson test sets it)}"
: "${TESTS_DIR:?TESTS_DIR must point at tests/ (meson test sets it)}"

# Says why this machine cannot run the tests, on stderr and on fd 3 (bats' own output, so that it shows even
# without --print-errorlogs), and fails. Never a skip: a machine where the runtime cannot run fails these tests.
pm_cannot() {
  local msg="podman tests: CANNOT RUN: $*"
  echo "$msg" >&2
  sed 's/^/# /' <<<"$msg" >&3
  return 1
}

# Picks the way to run containers (setup_file; tests/podman/runtime.sh says which ways it tries): writes
# $BATS_FILE_TMPDIR/pm.env (PM_GLOBAL, PM_RUN), or $BATS_FILE_TMPDIR/pm.cannot with the reason, which every test then
# fails with (pm_setup). The first line of the TAP output says which runtime runs the tests.
pm_preflight() {
  local env="$BATS_FILE_TMPDIR/pm.env" cannot="$BATS_FILE_TMPDIR/pm.cannot" out
  rm -f "$env" "$cannot"
  if [[ -n "${PM_IMAGE_ERROR:-}" ]]; then
    printf '%s\n' "$PM_IMAGE_ERROR" >"$cannot"
  elif [[ -z "${PM_IMAGE:-}" ]]; then
    echo "PM_IMAGE is not set (run the file through tests/podman/image.sh exec)" >"$cannot"
  elif out=$(bash "$BATS_TEST_DIRNAME/runtime.sh" "$PM_IMAGE" "$BATON" "$BATON_DEMO" 2>&1); then
    printf '%s\n' "$out" >"$env"
    # shellcheck disable=SC1090
    source "$env"
    echo "# podman $(podman --version | sed 's/^podman version //'), runtime ${PM_GLOBAL#--runtime=}," \
      "image $PM_IMAGE; run options: ${PM_RUN[*]}" >&3
  else
    printf '%s\n' "$out" >"$cannot"
  fi
}

# Per test: fails with the reason where the runtime cannot run; otherwise loads PM_GLOBAL and PM_RUN and makes the
# test's /out.
pm_setup() {
  if [[ -f "$BATS_FILE_TMPDIR/pm.cannot" ]]; then
    pm_cannot "$(cat "$BATS_FILE_TMPDIR/pm.cannot")"
    return 1
  fi
  # shellcheck disable=SC1091
  source "$BATS_FILE_TMPDIR/pm.env"
  PM_OUT="$BATS_TEST_TMPDIR/out"
  mkdir -p "$PM_OUT"
  chmod 777 "$PM_OUT"
  PM_NAMES=()
}

# podman with the chosen runtime, bounded: pm COMMAND [ARG]...
pm() { timeout "$WAIT_SECONDS" podman "$PM_GLOBAL" "$@"; }

# The container's name for the test's NAME.
pm_name() { echo "baton-test-$$-$BATS_TEST_NUMBER-$1"; }

# Starts a container in the background, as `podman run` does it attached (so that the exit status of podman is the
# container's): pm_start NAME [PODMAN-RUN-OPTION]... -- COMMAND [ARG]... Its output goes to $BATS_TEST_TMPDIR/NAME.log;
# returns once its PID 1 runs (PM_PID_NAME: its host pid) or the container has ended already.
# PM_KEEP=1: the container is kept once it ends (no --rm; the teardown removes it), for a test whose `podman exec`
# ends the container: podman reads an exec session's exit status after the session, and where `podman run --rm` has
# removed the ended container by then, podman exec fails with status 255 ("container has already been removed", or
# "no container with ID ... found in database": podman 5, about 1 run in 5) though the command printed its answer
# and exited 0.
pm_start() {
  local name=$1 opts=() run=()
  shift
  local o
  for o in "${PM_RUN[@]}"; do
    [[ -n ${PM_KEEP:-} && $o == --rm ]] || run+=("$o")
  done
  while [[ $# -gt 0 && $1 != -- ]]; do
    opts+=("$1")
    shift
  done
  shift
  PM_NAMES+=("$name")
  podman "$PM_GLOBAL" run --name "$(pm_name "$name")" "${run[@]}" -v "$PM_OUT:/out" "${opts[@]}" "$PM_IMAGE" "$@" \
    </dev/null >"$BATS_TEST_TMPDIR/$name.log" 2>&1 3>&- &
  printf -v "PM_JOB_$name" '%s' $!
  wait_for pm_started "$name"
}
# The container runs (PM_PID_NAME set), or has already ended (a program that exits at once).
pm_started() {
  local job="PM_JOB_$1"
  pm_running "$1" || ! kill -0 "${!job}" 2>/dev/null || [[ "$(ps -o stat= -p "${!job}" 2>/dev/null)" == Z* ]]
}

# The host pid of the container's PID 1 (empty while it does not run).
pm_pid() { pm inspect --format '{{.State.Pid}}' "$(pm_name "$1")" 2>/dev/null | grep -v '^0$'; }
pm_running() {
  local pid
  pid=$(pm_pid "$1") && [[ -n $pid ]] || return 1
  printf -v "PM_PID_$1" '%s' "$pid"
}

# Waits until the container's `podman run` has exited and sets PM_STATUS to its exit status: pm_wait NAME.
pm_wait() {
  local job="PM_JOB_$1" deadline=$((SECONDS + WAIT_SECONDS))
  while kill -0 "${!job}" 2>/dev/null; do
    # A zombie has exited too: wait reaps it below.
    [[ "$(ps -o stat= -p "${!job}" 2>/dev/null)" == Z* ]] && break
    if ((SECONDS >= deadline)); then
      echo "the container $1 did not end within ${WAIT_SECONDS}s; its output:" >&2
      tail -n 20 "$BATS_TEST_TMPDIR/$1.log" >&2
      return 1
    fi
    sleep 0.02
  done
  PM_STATUS=0
  wait "${!job}" || PM_STATUS=$?
}

pm_exec() {
  local name=$1
  shift
  pm exec "$(pm_name "$name")" "$@"
}

# The processes of the container (its PID namespace), seen from the host: "PID PPID STAT COMM ARGS" lines, host
# pids.
pm_ps() {
  local pid="PM_PID_$1" ns
  ns=$(readlink "/proc/${!pid}/ns/pid") || return 1
  ps -e -o pidns=,pid=,ppid=,stat=,comm=,args= | awk -v ns="${ns//[^0-9]/}" '$1 == ns { $1 = ""; sub(/^ /, ""); print }'
}
# The program's processes: the container's but baton's own (PID 1, and a generation's keeper where baton has them:
# baton's child, named baton-keeper).
pm_program_ps() {
  local pid1="PM_PID_$1"
  pm_ps "$1" | awk -v p1="${!pid1}" '$1 != p1 && $4 != "baton-keeper"'
}
# How many processes the program has, and how many zombies the container has.
pm_count() { pm_program_ps "$1" | wc -l; }
pm_zombies() { pm_ps "$1" | awk '$3 ~ /^Z/' | wc -l; }
pm_count_is() { [[ "$(pm_count "$1")" == "$2" ]]; }

# The container's `baton status --json`, one value of it by a Python expression over d: pm_status NAME EXPR.
pm_status() {
  pm_exec "$1" baton status --control /run/baton.sock --json |
    "$PYTHON" -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps(eval(sys.argv[1])))' "$2"
}

# Runs a command on the host in the container's network namespace: pm_net NAME COMMAND [ARG]...
pm_net() {
  local pid="PM_PID_$1"
  shift
  nsenter -t "${!pid}" -n "$@"
}

# Sends SIGTERM to the container's PID 1 from the host, as the runtime does for `podman stop`, and prints the
# milliseconds until that process has exited (its pidfd is readable then; fails after WAIT_SECONDS): pm_term_ms NAME.
pm_term_ms() {
  local pid="PM_PID_$1"
  "$PYTHON" -c '
import os, select, signal, sys, time
pid, deadline = int(sys.argv[1]), float(sys.argv[2])
fd = os.pidfd_open(pid)
t0 = time.monotonic()
os.kill(pid, signal.SIGTERM)
if not select.select([fd], [], [], deadline)[0]:
    sys.exit("pid %d did not exit within %gs of SIGTERM" % (pid, deadline))
print(round((time.monotonic() - t0) * 1000))' "${!pid}" "$WAIT_SECONDS"
}

# Every container of the test goes, its `podman run` with it.
pm_teardown() {
  local name job
  for name in "${PM_NAMES[@]}"; do
    pm rm -f -t 0 "$(pm_name "$name")" >/dev/null 2>&1 || true
    job="PM_JOB_$name"
    [[ -z "${!job:-}" ]] || wait "${!job}" 2>/dev/null || true
  done
  if [[ -z "${BATS_TEST_COMPLETED:-}" ]]; then
    for name in "${PM_NAMES[@]}"; do
      echo "--- the output of the container $name" >&2
      tail -n 30 "$BATS_TEST_TMPDIR/$name.log" >&2 || true
    done
  fi
}
