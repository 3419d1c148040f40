#!/bin/sh
# Installs what baton needs to build (no option), to run the demo (--demo: curl too) and to test (--test) on Debian 13
# or 12 (run as root), and to measure (--bench: bench/'s tools). Idempotent: skips apt when all is there.
set -eu
build="meson ninja-build pkg-config gcc libc6-dev libcyaml-dev libyaml-dev libsystemd-dev scdoc"
test="bats bats-assert bats-support bats-file curl socat systemd systemd-container procps python3 iproute2 util-linux coreutils stress-ng redis-server wrk
  golang-go golang-github-coreos-go-systemd-dev python3-systemd python3-twisted"
# tests/podman and bench/container-inits: a real container runtime (rootful podman; crun, and runc where crun refuses
# a hybrid cgroup host), debootstrap for its image, and the inits baton is compared with.
test="$test podman crun runc conmon debootstrap tini dumb-init catatonit"
# tests/bats/programs.bats runs these unmodified Debian programs under baton; config-examples/ has a config for each.
programs="lighttpd gunicorn memcached nginx-light libserver-starter-perl tftpd-hpa"
# bench/ only (--bench): the inits idle-footprint compares baton with, and gnuplot for the SVG charts.
bench="tini dumb-init catatonit gnuplot-nox wrk libserver-starter-perl curl socat python3 systemd"
extra=""
case "${1:-}" in
  --demo) extra="curl" ;;
  --test) extra="$test $programs" ;;
  --bench) extra="$bench" ;;
  --all) extra="$test $programs $bench ${BATON_EXTRA_PACKAGES:-}" ;;
esac
# One dpkg-query for all (one per package costs seconds): " name name ... " of those installed.
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package} ${Status}\n' $build $extra 2>/dev/null |
  sed -n 's/ install ok installed$//p' | tr '\n' ' ')"
missing=""
for p in $build $extra; do
  case "$installed" in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages:$missing (run as root, or apt-get install them)" >&2
  exit 1
fi
echo "deps.sh: installing$missing" >&2
# The postinst scripts of lighttpd, memcached, nginx and tftpd-hpa start their daemon (ports 80, 11211, 69): the tests
# only want the binaries. invoke-rc.d asks policy-rc.d(8) first, and 101 means "action forbidden". A policy that is
# already there (a container's) is left as it is; ours is removed again however the install ends.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  trap 'exit 130' INT TERM
  printf '#!/bin/sh\n# Written by baton contrib/deps.sh for the duration of an install.\nexit 101\n' >"$policy"
  chmod 755 "$policy"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
