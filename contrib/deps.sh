#!/bin/sh
# Installs what baton needs to build and test on Debian 12 (run as root). Idempotent: skips apt when all is there.
set -eu
build="meson ninja-build pkg-config gcc libc6-dev libcyaml-dev libyaml-dev libsystemd-dev scdoc"
test="bats bats-assert bats-support bats-file curl socat systemd systemd-container procps python3 iproute2 util-linux coreutils"
extra=""
case "${1:-}" in
  --test) extra="$test" ;;
  --all) extra="$test ${BATON_EXTRA_PACKAGES:-}" ;;
esac
missing=""
for p in $build $extra; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "deps.sh: missing packages:$missing (run as root, or apt-get install them)" >&2
  exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
