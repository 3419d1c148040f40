#!/bin/sh
# Checks that every module of src/ includes only modules of lower layers (and its own header): the program is layers,
# not circles. Usage: sh tests/lint/layers.sh [SRC_DIR]. Prints one TAP line per file; exits 1 on an upward or
# sideways include, or on a module missing from the table below (a new module must be given its place).
#
# The layers, bottom up (a module may include any module of a lower layer):
#   0  util exit-status version   helpers every module may use; which baton this is
#   1  log address json output evloop proc creds
#   2  spawn notify control       starting a child; the notify and control protocols
#      cgroup                     baton's cgroup v2 subtree: a cgroup per generation
#   3  config                     the configuration
#      keeper                     a generation's keeper, where there are no cgroups (starts the program: spawn)
#   4  compat sockets             what the config asks of a program's environment; listening sockets
#   5  program                    the exec of a program for a config
#   6  generation                 started programs, their processes and pipes
#   7  readiness upstream         mechanisms the state machine drives
#   8  supervisor                 the state machine
#   9  status                     the state machine's state as the control socket shows it
#   10 run                        the event sources that feed the state machine
#   11 main                       the command line
set -eu
src=${1:-$(dirname "$0")/../../src}
rank() {
  case "$1" in
    util | exit-status | version) echo 0 ;;
    log | address | json | output | evloop | proc | creds) echo 1 ;;
    spawn | notify | control | cgroup) echo 2 ;;
    config | keeper) echo 3 ;;
    compat | sockets) echo 4 ;;
    program) echo 5 ;;
    generation) echo 6 ;;
    readiness | upstream) echo 7 ;;
    supervisor) echo 8 ;;
    status) echo 9 ;;
    run) echo 10 ;;
    main) echo 11 ;;
    *) echo "" ;;
  esac
}
# config-yaml.c, config-print.c, config-internal.h ... belong to the module "config"; spawn-env.c to "spawn".
module() {
  m=$(basename "$1")
  m=${m%.[ch]}
  echo "${m%%-*}" | sed 's/^exit$/exit-status/'
}
n=0
bad=0
for f in "$src"/*.c "$src"/*.h "$src"/*/*.c "$src"/*/*.h; do
  case "$f" in */preload/*) continue ;; esac
  [ -e "$f" ] || continue
  n=$((n + 1))
  m=$(module "$f")
  r=$(rank "$m")
  if [ -z "$r" ]; then
    echo "not ok $n - $(basename "$f"): module '$m' has no layer in tests/lint/layers.sh"
    bad=1
    continue
  fi
  why=""
  for inc in $(sed -n 's/^#include "\([^"]*\)\.h"$/\1/p' "$f"); do
    im=$(module "$inc.h")
    [ "$im" = "$m" ] && continue
    ir=$(rank "$im")
    if [ -z "$ir" ]; then
      why="$why $inc.h (no layer)"
    elif [ "$ir" -ge "$r" ]; then
      why="$why $inc.h (layer $ir, not below $r)"
    fi
  done
  if [ -n "$why" ]; then
    echo "not ok $n - $(basename "$f") (layer $r) includes:$why"
    bad=1
  else
    echo "ok $n - $(basename "$f") (layer $r) includes only lower layers"
  fi
done
echo "1..$n"
exit "$bad"
