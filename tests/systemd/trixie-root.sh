#!/bin/bash
# trixie-root.sh: a minimal Debian 13 "trixie" root (systemd 257) for the systemd tests to boot instead of the host's
# own / (helpers.bash: CT_ROOT).
#
#   trixie-root.sh                  prints the root's path (building it if needed)
#   trixie-root.sh exec COMMAND...  runs COMMAND with CT_ROOT set (meson test 'systemd-257' runs bats this way).
#                                   Where the host's own systemd is 253 or later (Debian 13), CT_ROOT=/ : the host's
#                                   root is already what this builds. Where the root cannot be built, COMMAND runs
#                                   with CT_ROOT_ERROR set to the reason, which ct_boot reports (CANNOT RUN).
#   trixie-root.sh --clean          removes the cache
#
# The root is debootstrapped once, from the mirror apt uses on this machine, and kept as a tarball under /var/tmp
# (CT_ROOT_CACHE, default /var/tmp/baton-ct-trixie): the tarball's name carries a hash of the suite and the package
# list below (ROOT_FORMAT too: raise it when the way the root is made changes), so a change of the list builds a
# new one and removes the old. The tarball is unpacked once into CT_ROOT_CACHE.roots/HASH, reused while it is there:
# the tests boot it with --volatile=yes (a tmpfs as /, the root's /usr read-only), so nothing they do reaches it.
# Several runs at once are serialized by a lock (flock on CT_ROOT_CACHE.lock).
#
# What the tests need inside: systemd as PID 1; the libraries baton (built on the host, Debian 12) links
# dynamically (libsystemd0, libcyaml1, libyaml-0-2; libc6 comes with the base); what helpers.bash runs inside with
# `ct` (ps, kill: procps; ss, ip: iproute2); python3 for the system call probe that ct_preflight runs as a unit in
# there (tests/systemd/syscall-probe.py). curl and the client loop run from the host, in the container's network
# namespace only (ct_net), so curl is not in here. dbus and libnss-systemd: as on a real Debian 13 machine, for
# DynamicUser= (baton-hardened.service) names.
set -euo pipefail

SUITE=trixie
PACKAGES=(systemd dbus libnss-systemd libsystemd0 libcyaml1 libyaml-0-2 procps iproute2 util-linux python3)
ROOT_FORMAT=1
cache=${CT_ROOT_CACHE:-/var/tmp/baton-ct-trixie}

# All in one function, read whole before it runs: a run keeps working when this file is edited meanwhile.
main() {
  if [[ ${1:-} == --clean ]]; then
    rm -rf "$cache".*.tar "$cache.roots" "$cache.base" "$cache.log"
    exit 0
  fi

  if [[ ${1:-} == exec ]]; then
    shift
    [[ $# -gt 0 ]] || { sed -n '2,16p' "$0" >&2; exit 2; }
    host=$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
    if [[ -n "$host" ]] && ((host >= 253)); then
      echo "# trixie-root.sh: the host's own systemd is $host (>= 253): the tests boot the host's root" >&2
      export CT_ROOT=/
    elif root=$("$0" 2>"${TMPDIR:-/tmp}/trixie-root.$$.err"); then
      cat "${TMPDIR:-/tmp}/trixie-root.$$.err" >&2
      export CT_ROOT="$root"
    else
      CT_ROOT_ERROR="the Debian 13 root could not be built by $0:
  $(tail -n 25 "${TMPDIR:-/tmp}/trixie-root.$$.err")"
      export CT_ROOT=/nonexistent CT_ROOT_ERROR
    fi
    rm -f "${TMPDIR:-/tmp}/trixie-root.$$.err"
    exec "$@"
  fi
  [[ $# == 0 ]] || { sed -n '2,16p' "$0" >&2; exit 2; }
  [[ "$(id -u)" == 0 ]] || { echo "trixie-root.sh: needs root (debootstrap)" >&2; exit 2; }

  stamp=$(printf '%s\n' "$ROOT_FORMAT" "$SUITE" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
  tarball="$cache.$stamp.tar"
  exec 9>"$cache.lock"
  flock 9

  if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null ||
      { echo "trixie-root.sh: debootstrap missing and not installable (apt-get install debootstrap)" >&2; exit 2; }
    # The mirror apt uses here (as /work/shared/tools/fresh-debian finds it): deb822 sources first, then sources.list.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [[ -n $mirror ]] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [[ -n $mirror ]] || mirror=http://deb.debian.org/debian
    echo "trixie-root.sh: debootstrap $SUITE from $mirror (once; cached as $tarball)" >&2
    rm -rf "$cache.base"
    incl=$(IFS=,; echo "${PACKAGES[*]}")
    if ! debootstrap --variant=minbase --include="$incl" "$SUITE" "$cache.base" "$mirror" >"$cache.log" 2>&1; then
      echo "trixie-root.sh: debootstrap failed; the end of $cache.log:" >&2
      tail -n 20 "$cache.log" >&2
      rm -rf "$cache.base"
      exit 1
    fi
    # No machine-id: systemd makes a transient one at each boot (firstboot is off in the tests).
    : >"$cache.base/etc/machine-id"
    rm -f "$cache.base/var/cache/apt/archives/"*.deb
    tar -C "$cache.base" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$cache.base"
    # Older tarballs of this script (another package list) go.
    for old in "$cache".*.tar; do [[ "$old" == "$tarball" ]] || rm -f "$old"; done
  fi

  root="$cache.roots/$stamp"
  if [[ ! -f "$root.ok" ]]; then
    rm -rf "$cache.roots"
    mkdir -p "$root"
    tar -C "$root" -xf "$tarball"
    touch "$root.ok"
  fi
  echo "$root"
}

main "$@"
exit
