#!/bin/sh
# Sets everything up on a fresh Debian 13 or 12 machine and runs baton on the demo service:
#   sh contrib/demo.sh          (as root; Ctrl-C stops it)
# It prints baton's PID and the commands to try from another terminal.
set -eu
cd "$(dirname "$0")/.."
# curl: the README tells you to try the demo with it, and minimal installs lack it.
sh contrib/deps.sh --demo
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
addr="${BATON_DEMO_LISTEN:-tcp://127.0.0.1:8080}"
url="http://${addr#tcp://}/"
# exec below keeps this shell's PID: $$ is baton's PID from then on, the unit's main PID under systemd.
cat >&2 <<MSG
baton (pid $$) serves the demo on $addr; Ctrl-C stops it. From another terminal:
  curl $url          the answer names the demo's pid and its generation (1)
  kill -HUP $$       reload: a new generation starts on the same socket, and curl then says generation=2
                     (send it to baton, pid $$: HUP kills the demo itself, and then baton exits with it,
                     status 129, as a container's init does; --set restart.policy=on-failure would restart it)
  kill -TERM $$      stop (what Ctrl-C does)
MSG
exec ./build/baton run --listen "http=$addr" -- ./build/baton-demo
