#!/bin/sh
# Sets everything up on a fresh Debian 12 machine and runs baton on the demo service:
#   sh contrib/demo.sh          (as root; Ctrl-C stops it)
# Then, from another terminal: curl http://127.0.0.1:8080/
set -eu
cd "$(dirname "$0")/.."
sh contrib/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
addr="${BATON_DEMO_LISTEN:-tcp://127.0.0.1:8080}"
echo "baton: serving the demo on $addr (curl http://${addr#tcp://}/); Ctrl-C stops it" >&2
exec ./build/baton run --listen "http=$addr" -- ./build/baton-demo
