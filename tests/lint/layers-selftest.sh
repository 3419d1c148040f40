#!/bin/sh
# tests/lint/layers.sh must fail on what it is there to catch, and pass a tree that keeps to the ranks. Each case is
# a small tree of C files in a temporary src/, compiled with cc -c into a temporary build/ as meson would. TAP.
set -u
check=$(cd "$(dirname "$0")" && pwd)/layers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
command -v cc >/dev/null 2>&1 || {
  echo "not ok 1 - no C compiler (cc): the self-test cannot build its trees"
  echo "1..1"
  exit 1
}
n=0
fail=0
# put PATH TEXT: one source file of the tree (printf format: \n for a new line), compiled by the next compile.
put() {
  mkdir -p "$(dirname "$tmp/src/$1")"
  # shellcheck disable=SC2059
  printf "$2" >"$tmp/src/$1"
  case "$1" in *.c) echo "$1" >>"$tmp/changed" ;; esac
}
# The folders in the order the real src/meson.build lists them.
folders() {
  mkdir -p "$tmp/src"
  for d in "$@"; do echo "subdir('$d')"; done >"$tmp/src/meson.build"
}
# Compiles what put() wrote since the last compile (the machine is shared: the good tree is built once).
compile() {
  mkdir -p "$tmp/build"
  incs=$(for d in "$tmp"/src/*/ "$tmp/src"; do printf -- '-I%s ' "$d"; done)
  for c in $(sort -u "$tmp/changed"); do
    # shellcheck disable=SC2086
    cc -c $incs -o "$tmp/build/$(basename "$c").o" "$tmp/src/$c" || echo "# cc failed on $c"
  done
  : >"$tmp/changed"
}
# expect PASS|FAIL WHAT [PATTERN]: the check's verdict on the tree, and for FAIL a line of its output matching PATTERN
# (so a failure for another reason does not count).
expect() {
  n=$((n + 1))
  out=$(sh "$check" "$tmp/src" "$tmp/build" 2>&1)
  rc=$?
  if [ "$1" = PASS ] && [ $rc = 0 ]; then
    echo "ok $n - $2"
  elif [ "$1" = FAIL ] && [ $rc != 0 ] && echo "$out" | grep -q -- "$3"; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2 (exit $rc)"
    echo "$out" | sed 's/^/# /'
    fail=1
  fi
  rm -rf "$tmp/src" "$tmp/build"
}
# A tree that keeps to the ranks: base/ < sys/ < config/, config.c < config-yaml.c inside the family, a header of
# the family at the rank of the files that include it (config-internal.h, with config.c). Built once, copied.
good() {
  cp -a "$tmp/good/src" "$tmp/good/build" "$tmp/"
}
good_tree() {
  folders base sys config exec generation supervisor run
  put base/util.h 'int util_f(void);\n'
  put base/util.c '#include "util.h"\nint util_f(void) { return 1; }\n'
  put base/log.c '#include "util.h"\nint log_f(void) { return util_f(); }\n'
  put sys/spawn-env.h 'int spawn_env_f(void);\n'
  put sys/spawn.h '#include "spawn-env.h"\n'
  put sys/spawn-env.c '#include "spawn-env.h"\n#include "util.h"\nint spawn_env_f(void) { return util_f(); }\n'
  put sys/spawn.c '#include "spawn.h"\nint spawn_f(void) { return spawn_env_f(); }\n'
  put config/config.h 'int config_f(void);\n'
  put config/config-internal.h '#include "config.h"\n'
  put config/config.c '#include "config-internal.h"\nint log_f(void);\nint config_f(void) { return log_f(); }\n'
  put config/config-yaml.c '#include "config-internal.h"\nint config_yaml_f(void) { return config_f(); }\n'
  put config/config-print.c '#include "config.h"\nint config_print_f(void) { return config_f(); }\n'
}

: >"$tmp/changed"
good_tree
compile
mkdir "$tmp/good"
cp -a "$tmp/src" "$tmp/build" "$tmp/good/"
expect PASS "a tree whose calls and includes run downward passes"

good
put base/util.c '#include "util.h"\nint config_f(void);\nint util_f(void) { return config_f(); }\n'
compile
expect FAIL "an upward call fails (util.c calls config.c)" "util.c (rank [0-9]*): calls config_f of config.c (rank [0-9]*, upward)"

good
put config/config-print.c '#include "config.h"\nint config_yaml_f(void);\nint config_print_f(void) { return config_yaml_f(); }\n'
compile
expect FAIL "a sideways call inside a family fails (config-print.c calls config-yaml.c)" \
  "config-print.c (rank [0-9]*): calls config_yaml_f of config-yaml.c (rank [0-9]*, sideways)"

good
put sys/spawn-env.c '#include "spawn.h"\nint spawn_env_f(void) { return 0; }\n'
compile
expect FAIL "an include of a higher sibling's header fails (spawn-env.c includes spawn.h)" \
  "spawn-env.c (rank [0-9]*): includes spawn.h (rank [0-9]*, upward)"

good
put config/config.c '#include "config-internal.h"\nint config_yaml_f(void);\nint config_f(void) { return config_yaml_f(); }\n'
compile
expect FAIL "a call back into a higher sibling fails (config.c calls config-yaml.c)" \
  "config.c (rank [0-9]*): calls config_yaml_f of config-yaml.c (rank [0-9]*, upward)"

good
put supervisor/supervisor.h 'int supervisor_f(void);\n'
put base/log.c '#include "util.h"\n#include "supervisor.h"\nint log_f(void) { return util_f(); }\n'
compile
expect FAIL "an upward include fails (log.c includes supervisor.h)" "log.c (rank [0-9]*): includes supervisor.h (rank [0-9]*, upward)"

good
put sys/notify.h 'int notify_f(void);\n'
put sys/cgroup.c '#include "notify.h"\nint cgroup_f(void) { return 0; }\n'
compile
expect FAIL "a sideways include fails (cgroup.c includes notify.h)" "cgroup.c (rank [0-9]*): includes notify.h (rank [0-9]*, sideways)"

good
rm "$tmp/src/config/config-print.c"
put sys/config-print.c '#include "config.h"\nint config_print_f(void) { return config_f(); }\n'
compile
expect FAIL "a file in another folder than its rank's fails (config-print.c in sys/)" \
  "config-print.c (rank [0-9]*): is in sys/, its rank [0-9]* belongs in config/"

good
put base/newmodule.c 'int newmodule_f(void) { return 0; }\n'
compile
expect FAIL "a file with no rank fails" "newmodule.c .*no rank"

good
compile
rm "$tmp/build/config-yaml.c.o"
expect FAIL "a missing object fails, saying so" "no object config-yaml.c.o"

good
compile
touch -d '2000-01-01' "$tmp/build/config.c.o"
expect FAIL "an object older than its source fails, saying so" "config.c.*older than the source"

good
folders base config sys exec generation supervisor run
compile
expect FAIL "folders that src/meson.build orders otherwise than the ranks fail" "the table's folders run"

good
compile
rm -rf "$tmp/build"
expect FAIL "a missing build directory fails, saying so" "no build directory"

echo "1..$n"
exit "$fail"
