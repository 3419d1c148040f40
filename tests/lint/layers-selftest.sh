#!/bin/sh
# tests/lint/layers.sh must fail on what it is there to catch: an upward include, a sideways one, and a module with
# no layer; and pass a tree that keeps to the layers. TAP.
set -u
check=$(dirname "$0")/layers.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
expect() { # expect PASS|FAIL DESCRIPTION, on the files in $tmp
  n=$((n + 1))
  out=$(sh "$check" "$tmp" 2>&1)
  rc=$?
  if { [ "$1" = PASS ] && [ $rc = 0 ]; } || { [ "$1" = FAIL ] && [ $rc != 0 ]; }; then
    echo "ok $n - $2"
  else
    echo "not ok $n - $2 (exit $rc)"
    echo "$out" | sed 's/^/# /'
  fi
  rm -f "$tmp"/*
}
printf '#include "util.h"\n#include "log.h"\n' >"$tmp/config.c"
printf '#pragma once\n' >"$tmp/util.h"
expect PASS "includes of lower layers pass"
printf '#include "supervisor.h"\n' >"$tmp/util.c"
expect FAIL "an upward include fails"
printf '#include "readiness.h"\n' >"$tmp/upstream.c"
expect FAIL "a sideways include (same layer) fails"
printf '#include "util.h"\n' >"$tmp/newmodule.c"
expect FAIL "a module with no layer fails"
printf '#include "config.h"\n#include "address.h"\n' >"$tmp/config-yaml.c"
expect PASS "config-yaml.c belongs to the module config and may include config.h"
echo "1..$n"
