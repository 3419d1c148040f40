#!/bin/bash
# image.sh: the podman image the container tests run (tests/podman/podman.bats, bench/container-inits): a minimal
# Debian root of the host's own release, imported with `podman import` (no registry is reachable).
#
#   image.sh                  prints the image's name (building it if needed)
#   image.sh exec COMMAND...  runs COMMAND with PM_IMAGE set to the image's name (meson test 'podman' runs bats
#                             this way); where the image cannot be had, with PM_IMAGE_ERROR set to the reason, which
#                             the tests report (CANNOT RUN)
#   image.sh --clean          removes the cache and the images
#
# The root is debootstrapped once (--variant=minbase) from the mirror apt uses on this machine and kept as a tarball
# under /var/tmp (PM_IMAGE_CACHE, default /var/tmp/baton-podman): its name carries a hash of the suite and the
# package list below (ROOT_FORMAT too: raise it when the way the root is made changes), so a change of the list
# builds a new one and removes the old. The image is that tarball imported as localhost/baton-test:SUITE-HASH, kept
# in podman's storage and imported again only when it is gone. Several runs at once are serialized by a lock (flock
# on PM_IMAGE_CACHE.lock).
#
# The suite is the host's own (VERSION_CODENAME of /etc/os-release: bookworm on Debian 12, trixie on 13), so that
# the build's baton, linked on the host and bind-mounted into the containers, finds the same libraries: libsystemd0,
# libcyaml1, libyaml-0-2 (libc6 comes with the base). What the tests run inside: ps (procps), setsid (util-linux),
# bash, perl (perl-base, in minbase); the other inits for bench/container-inits: tini, dumb-init, catatonit.
set -euo pipefail

PACKAGES=(libsystemd0 libcyaml1 libyaml-0-2 procps util-linux tini dumb-init catatonit)
ROOT_FORMAT=1
cache=${PM_IMAGE_CACHE:-/var/tmp/baton-podman}

# All in one function, read whole before it runs: a run keeps working when this file is edited meanwhile.
main() {
  suite=${PM_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}
  [[ -n $suite ]] || { echo "image.sh: no VERSION_CODENAME in /etc/os-release: set PM_SUITE" >&2; exit 2; }
  stamp=$(printf '%s\n' "$ROOT_FORMAT" "$suite" "${PACKAGES[@]}" | sha256sum | cut -c1-12)
  image="localhost/baton-test:$suite-$stamp"

  if [[ ${1:-} == --clean ]]; then
    podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^localhost/baton-test:' |
      xargs -r podman rmi -f >/dev/null || true
    rm -rf "$cache".*.tar "$cache.base" "$cache.log"
    exit 0
  fi

  if [[ ${1:-} == exec ]]; then
    shift
    [[ $# -gt 0 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
    local err="${TMPDIR:-/tmp}/baton-podman-image.$$.err"
    if name=$("$0" 2>"$err"); then
      cat "$err" >&2
      export PM_IMAGE="$name"
    else
      PM_IMAGE_ERROR="the image could not be built by $0:
  $(tail -n 25 "$err")"
      export PM_IMAGE_ERROR
    fi
    rm -f "$err"
    exec "$@"
  fi
  [[ $# == 0 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
  [[ "$(id -u)" == 0 ]] || { echo "image.sh: needs root (debootstrap, rootful podman)" >&2; exit 2; }
  command -v podman >/dev/null || { echo "image.sh: podman not found (sh contrib/deps.sh --test)" >&2; exit 2; }

  exec 9>"$cache.lock"
  flock 9
  if podman image exists "$image"; then
    echo "$image"
    return
  fi

  tarball="$cache.$suite-$stamp.tar"
  if [[ ! -s "$tarball" ]]; then
    command -v debootstrap >/dev/null ||
      { echo "image.sh: debootstrap not found (sh contrib/deps.sh --test)" >&2; exit 2; }
    # The mirror apt uses here (as trixie-root.sh finds it): deb822 sources first, then sources.list.
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [[ -n $mirror ]] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [[ -n $mirror ]] || mirror=http://deb.debian.org/debian
    echo "image.sh: debootstrap $suite from $mirror (once; cached as $tarball)" >&2
    rm -rf "$cache.base"
    incl=$(IFS=,; echo "${PACKAGES[*]}")
    if ! debootstrap --variant=minbase --include="$incl" "$suite" "$cache.base" "$mirror" >"$cache.log" 2>&1; then
      echo "image.sh: debootstrap failed; the end of $cache.log:" >&2
      tail -n 20 "$cache.log" >&2
      rm -rf "$cache.base"
      exit 1
    fi
    # What no test reads: a smaller tarball, a quicker import.
    rm -rf "$cache.base/var/cache/apt/archives/"*.deb "$cache.base/var/lib/apt/lists/"* \
      "$cache.base/usr/share/doc" "$cache.base/usr/share/man" "$cache.base/usr/share/locale" \
      "$cache.base/usr/share/info"
    tar -C "$cache.base" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$cache.base"
    # Older tarballs and images of this script (another suite or package list) go.
    for old in "$cache".*.tar; do [[ "$old" == "$tarball" ]] || rm -f "$old"; done
  fi
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/baton-test:' | grep -vxF "$image" |
    xargs -r podman rmi -f >/dev/null 2>&1 || true
  echo "image.sh: podman import $tarball as $image (once)" >&2
  podman import -q "$tarball" "$image" >/dev/null
  echo "$image"
}

main "$@"
exit
