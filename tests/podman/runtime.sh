#!/bin/bash
# runtime.sh IMAGE BATON BATON_DEMO: how to run containers of IMAGE on this machine, with the build's baton and
# baton-demo bind-mounted at /usr/local/bin (read-only). Prints three bash lines to source: CONTAINERS_CONF exported
# (podman's configuration over the system's: see below), PM_GLOBAL (the global podman option that picks the runtime)
# and PM_RUN (an array: the options of `podman run`), for `podman "$PM_GLOBAL" run "${PM_RUN[@]}" IMAGE COMMAND...`;
# or, exit status 1, why no container can run here.
# Used by tests/podman/helpers.bash and bench/container-inits.
#
# The ways, tried in this order until one runs a container (a global podman option, then options of `podman run`,
# separated by "|"); then the build's baton must run in it:
# - crun as installed: a host with cgroup v2 only (Debian 13, a fresh Debian 12), or v1 only;
# - crun without a pids limit: a cgroup v2 host whose hierarchy offers podman no pids controller (a machine that is
#   itself a container, e.g. systemd-nspawn on a hybrid host, as fresh-debian --vm runs it): podman's default
#   pids_limit (2048) makes the runtime fail ("controller `pids` is not available"); --pids-limit=0 sets none, and
#   the container still gets a cgroup of its own, as it would on a real machine;
# - crun without cgroups: where podman may not create the container's cgroup at all (inside another container), or
#   where the runtime cannot set up that cgroup: Debian 12's crun 1.8 then raises RLIMIT_MEMLOCK, which a machine
#   without CAP_SYS_RESOURCE refuses ("setrlimit (RLIM_MEMLOCK): Operation not permitted": fresh-debian --vm on
#   Debian 12, where the two ways above fail);
# - runc: a hybrid cgroup host whose cgroup2 hierarchy holds a controller, where crun refuses to start any container
#   ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"), with or without cgroups.
# Every container gets --network=none (its own loopback only) and --pull=never (no registry is asked for IMAGE).
set -euo pipefail

WAYS=("--runtime=crun|" "--runtime=crun|--pids-limit=0" "--runtime=crun|--cgroups=disabled" "--runtime=runc|")

main() {
  [[ $# == 3 ]] || { sed -n '2,6p' "$0" >&2; exit 2; }
  local image=$1 baton=$2 demo=$3
  [[ "$(id -u)" == 0 ]] || { echo "needs root (rootful podman)"; exit 1; }
  command -v podman >/dev/null || { echo "podman not found (sh contrib/deps.sh --test)"; exit 1; }
  [[ -x $baton && -x $demo ]] || { echo "no executable baton ($baton) or baton-demo ($demo)"; exit 1; }

  # podman raises RLIMIT_NOFILE to 1048576 (and sets RLIMIT_NPROC) in the container: without CAP_SYS_RESOURCE (a
  # machine that is itself a container) the runtime's setrlimit fails ("setrlimit `RLIMIT_NOFILE`: Operation not
  # permitted"). The container gets the host's hard limits instead; podman lowers its own RLIMIT_NPROC to 32768.
  local nofile nproc
  nofile=$(ulimit -Hn)
  nproc=$(ulimit -Hu)
  [[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
  [[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
  local base=(--rm --pull=never --network=none --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc"
    -v "$baton:/usr/local/bin/baton:ro" -v "$demo:/usr/local/bin/baton-demo:ro")
  # A sanitizer build (tests/run.sh --sanitize) runs with its options; leak detection is off in there (it needs
  # ptrace(2)); the integration suite checks baton for leaks.
  if [[ -n "${ASAN_OPTIONS:-}" ]] || ldd "$baton" 2>/dev/null | grep -q libasan; then
    base+=(-e "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
  fi
  [[ -z "${UBSAN_OPTIONS:-}" ]] || base+=(-e "UBSAN_OPTIONS=$UBSAN_OPTIONS")

  # podman's default sysctls (net.ipv4.ping_group_range for rootful containers) are written by the runtime at start,
  # and /proc/sys is read-only where the host is itself a container (systemd-nspawn: "open
  # `/proc/sys/net/ipv4/ping_group_range`: Read-only file system"): the containers keep the kernel's defaults.
  local conf=${PM_CONTAINERS_CONF:-/var/tmp/baton-podman.containers.conf}
  printf '# Written by baton tests/podman/runtime.sh.\n[containers]\ndefault_sysctls = []\n' >"$conf"
  export CONTAINERS_CONF=$conf

  local way global run out errors="" libs
  for way in "${WAYS[@]}"; do
    global=${way%%|*}
    run=${way#*|}
    # shellcheck disable=SC2086 # $run: zero or one option
    if out=$(timeout 120 podman "$global" run "${base[@]}" $run "$image" true 2>&1); then
      # shellcheck disable=SC2086
      libs=$(missing_libs "$global" "$image" "$baton" "$demo" "${base[@]}" $run) || { echo "$libs"; exit 1; }
      # shellcheck disable=SC2086
      out=$(timeout 120 podman "$global" run "${base[@]}" $run $libs "$image" /usr/local/bin/baton --version 2>&1) ||
        true
      [[ $out == baton* ]] || { echo "the build's baton does not run in the image: $(tail -n 5 <<<"$out")"; exit 1; }
      printf 'export CONTAINERS_CONF=%q\n' "$conf"
      printf 'PM_GLOBAL=%q\n' "$global"
      printf 'PM_RUN=('
      # shellcheck disable=SC2086
      printf '%q ' "${base[@]}" $run $libs
      printf ')\n'
      exit 0
    fi
    errors+="
  podman $global run ${run:+$run }...: $(tail -n 3 <<<"$out")"
  done
  echo "no way to run a container here worked:$errors"
  exit 1
}

# The build's binaries, linked on the host, must find their libraries in the image: one the image lacks (libasan and
# libubsan of a sanitizer build, and what they need in turn) is the host's own file, bind-mounted where ldd finds it.
# Prints those -v options; fails naming a library the host has not either.
missing_libs() {
  local global=$1 image=$2 baton=$3 demo=$4
  shift 4
  local missing lib path opts=() pass
  for pass in 1 2 3 4; do
    missing=$(timeout 60 podman "$global" run "$@" "${opts[@]}" "$image" \
      ldd /usr/local/bin/baton /usr/local/bin/baton-demo 2>&1 | awk '/=> not found/ {print $1}' | sort -u)
    [[ -n $missing ]] || break
    for lib in $missing; do
      path=$(ldd "$baton" "$demo" | awk -v l="$lib" '$1 == l && $2 == "=>" {print $3; exit}')
      [[ -n $path && -e $path ]] ||
        { echo "the build's baton needs $lib, which neither the image nor the host has"; return 1; }
      path=$(readlink -f "$path")
      opts+=(-v "$path:$(dirname "$path")/$lib:ro")
    done
  done
  [[ -z $missing ]] || { echo "the build's baton still misses $missing in the image"; return 1; }
  echo "${opts[*]}"
}

main "$@"
