#!/bin/sh
# The program is layers, not circles: every file of src/ has a rank, and may call and include only files of a lower
# rank. Usage: sh tests/lint/layers.sh [SRC_DIR [BUILD_DIR]] (defaults: src/ and build/ beside this checkout).
# Prints one TAP line per file and exits 1 when a file
#   - calls (or uses a variable of) a file of its own rank or above: the objects' symbols tell, `nm -u` of each
#     file's object against `nm --defined-only` of the others, so what the compiler sees is what is checked;
#   - includes a header of a rank above its own, or of its own rank but another family (a header has the rank of
#     its .c file: a file including a sibling's header from below would make the sibling its dependency);
#   - sits in another folder than its rank's, or has no rank in the table below (a new file must be given one);
#   - has no object in BUILD_DIR, or one older than its source (build first: ninja -C BUILD_DIR).
# A family is the files of one name before the '-' (config.c, config-yaml.c, config-internal.h ...): inside it the
# files are ranked too, so a split file never calls back into its sibling.
#
# The ranks, bottom up, each with its folder; the folders must come in the order src/meson.build lists them
# (subdir(...)), main.c in src/ itself last. A header has the rank of its .c file, or its own line here.
ranks='
0  base        util.c exit-status.h version.c
1  base        log.c address.c json.c output.c evloop.c proc.c creds.c serialize.c libsystemd.c
2  sys         spawn-env.c spawn-preload.c notify.c control.c cgroup.c
3  sys         spawn.c
4  sys         keeper.c
5  config      config-libcyaml.c
6  config      config-loader.c
7  config      config.c config-internal.h config-socket.c
8  config      config-yaml.c config-print.c
9  config      config-cli.c config-peek.c
10 exec        compat.c sockets.c
11 exec        program.c
12 generation  generation-list.c
13 generation  generation-members.c
14 generation  generation.c
15 generation  readiness.c upstream.c generation-serialize.c
16 supervisor  supervisor-common.c
17 supervisor  supervisor.c
18 supervisor  status.c supervisor-serialize.c
19 run         run-core.c
20 run         run-state.c
21 run         run-upgrade.c
22 run         run-children.c
23 run         run.c
24 .           main.c
'
# Where the table's lines mean:
#   base        helpers every file may use; which baton this is; the log, parsers, the event loop's registry, the
#               records of the upgrade state (serialize); libsystemd loaded with dlopen() when the environment asks
#   sys         what baton asks of the kernel and speaks on the wire: spawn (env and preload checks below the fork
#               and exec), the notify and control protocols, baton's cgroup v2 subtree; keeper (above spawn, which
#               it calls): a generation's keeper where there are no cgroups
#   config      config-libcyaml (libcyaml and libyaml loaded with dlopen()), config-loader (the document of one
#               load, errors naming the key and its line), config (the model, defaults, validation), config-socket
#               (the control socket's path), config-yaml (the schema, loading, --set) and config-print, config-cli and
#               config-peek (control.socket alone)
#   exec        what a config asks of a program's world; program: the exec of a program for a config
#   generation  the list, what belongs to a generation (members, its cgroups), starting and stopping it; then
#               readiness and upstream, the mechanisms the state machine drives; generations across an upgrade
#   supervisor  what the transitions stand on (supervisor-common: names, queue, outbox, setup; its header with
#               the state they share), the state machine (supervisor.h: the transitions); status: its state as the
#               control socket shows it; the same across an upgrade
#   run         what the run files share (and run.h, their public header; a turn of the state machine), the upgrade
#               state's envelope, the upgrade, the children's ends and the signals, the event loop of `baton run`
set -u
here=$(dirname "$0")
src=${1:-$here/../../src}
build=${2:-$src/../build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bail() {
  echo "not ok 1 - layers: $*"
  echo "1..1"
  exit 1
}
command -v nm >/dev/null 2>&1 || bail "nm not found (binutils): the calls cannot be read"
[ -d "$build" ] || bail "no build directory $build: build first (meson setup build && ninja -C build)"
[ -f "$src/meson.build" ] || bail "no $src/meson.build: the order of the folders is read from its subdir() lines"

# The folders in their order: src/meson.build's subdir()s, then "." (src/ itself).
{
  sed -n "s/^subdir('\([^']*\)')/\1/p" "$src/meson.build"
  echo .
} >"$tmp/folders"
# The table: "file rank folder", and its folders in the meson.build's order.
echo "$ranks" | awk 'NF >= 3 { for (i = 3; i <= NF; i++) print $i, $1, $2 }' >"$tmp/ranks"
order=$(echo "$ranks" | awk 'NF >= 3 && $2 != last { printf "%s ", $2; last = $2 }')
want=$(awk -v o="$order" 'BEGIN { n = split(o, a, " "); for (i = 1; i <= n; i++) t[a[i]] = 1 }
  $1 in t { printf "%s ", $1 }' "$tmp/folders")
climb=$(echo "$ranks" | awk 'NF >= 3 { if (seen && $1 + 0 <= last) print $1; seen = 1; last = $1 + 0 }')
[ -z "$climb" ] || bail "the table's ranks must climb line by line: $climb does not"
[ "$order" = "$want" ] || bail "the table's folders run '$order', src/meson.build's subdir()s (then .) '$want'"

# Every file of the tree, as "folder file" (preload/ links nothing of baton's and is not a layer).
(cd "$src" && find . -path ./preload -prune -o \( -name '*.c' -o -name '*.h' \) -print) |
  sed 's|^\./||' | awk -F/ '{ print (NF == 1 ? "." : $1), $NF }' | sort -k2 >"$tmp/files"

# Objects: each .c file's, from the build as meson names them (NAME.c.o, or DIR_NAME.c.o for a target of another
# folder); tests/ holds other builds of the same sources, left out.
find "$build" -path "$build/tests" -prune -o -path "$build/meson-private" -prune -o -type f -name '*.c.o' -print |
  sort >"$tmp/objects"
awk -v T="$tmp" '
BEGIN {
  while ((getline o < (T "/objects")) > 0) {
    n = split(o, p, "/"); b = p[n]; sub(/\.o$/, "", b); all[++m] = b; path[m] = o
  }
}
$2 ~ /\.c$/ {
  o = ""
  for (i = 1; i <= m && o == ""; i++) if (all[i] == $2) o = path[i]
  for (i = 1; i <= m && o == ""; i++) if (substr(all[i], length(all[i]) - length($2)) == "_" $2) o = path[i]
  print ($1 == "." ? "" : $1 "/") $2, $2, o
}' "$tmp/files" >"$tmp/pairs"
: >"$tmp/noobj"
: >"$tmp/fresh"
# shellcheck disable=SC3013 # test -nt: dash, bash and busybox sh all have it
while read -r f b o; do
  if [ -z "$o" ]; then
    echo "$b no object $b.o in $build: build first (ninja -C $build)" >>"$tmp/noobj"
  elif [ "$src/$f" -nt "$o" ]; then
    echo "$b its object $o is older than the source: rebuild (ninja -C $build)" >>"$tmp/noobj"
  else
    echo "$o $b" >>"$tmp/fresh"
  fi
done <"$tmp/pairs"
# "symbol file" for what each object defines, "file symbol" for what it needs from elsewhere: one nm for all.
: >"$tmp/defs"
: >"$tmp/undefs"
if [ -s "$tmp/fresh" ]; then
  # shellcheck disable=SC2046 # object paths are meson's: no spaces
  nm -A -g --defined-only $(cut -d' ' -f1 "$tmp/fresh") | awk -v T="$tmp" '
    BEGIN { while ((getline < (T "/fresh")) > 0) file[$1] = $2 }
    { o = $0; sub(/:.*/, "", o); print $NF, file[o] }' >"$tmp/defs"
  # shellcheck disable=SC2046
  nm -A -u $(cut -d' ' -f1 "$tmp/fresh") | awk -v T="$tmp" '
    BEGIN { while ((getline < (T "/fresh")) > 0) file[$1] = $2 }
    { o = $0; sub(/:.*/, "", o); print file[o], $NF }' >"$tmp/undefs"
fi
# Includes: "file header", one awk for all.
# shellcheck disable=SC2046
(cd "$src" && awk '/^#include "[^"]*"$/ { n = split(FILENAME, p, "/"); h = $2; gsub(/"/, "", h); print p[n], h }' \
  $(awk '{ print ($1 == "." ? "" : $1 "/") $2 }' "$tmp/files")) >"$tmp/incs"

# One verdict per file: "file|rank|folder|why" (why empty when it keeps to its rank).
awk -v T="$tmp" '
function fam(f) { sub(/\.[ch]$/, "", f); sub(/-.*/, "", f); return f }
function hrank(h, c) { if (h in rank) return rank[h]; c = h; sub(/\.h$/, ".c", c); return (c in rank) ? rank[c] : "" }
function hfolder(h, c) { if (h in folder) return folder[h]; c = h; sub(/\.h$/, ".c", c); return folder[c] }
BEGIN {
  while ((getline < (T "/ranks")) > 0) { rank[$1] = $2; folder[$1] = $3 }
  while ((getline < (T "/defs")) > 0) if (!($1 in owner)) owner[$1] = $2
  while ((getline < (T "/noobj")) > 0) { f = $1; $1 = ""; why[f] = why[f] ";" $0 }
  while ((getline < (T "/files")) > 0) { n++; dir[n] = $1; file[n] = $2; present[$2] = 1 }
  while ((getline < (T "/undefs")) > 0) {
    s = $2; if (!(s in owner)) continue
    to = owner[s]; if (to == $1) continue
    key = $1 SUBSEP to
    if (!(key in calls)) { callee[$1] = callee[$1] " " to; calls[key] = "" }
    calls[key] = calls[key] " " s
  }
  while ((getline < (T "/incs")) > 0) {
    if (!($2 in present)) continue # a header of a system library, or of preload/
    inc[$1] = inc[$1] " " $2
  }
  for (i = 1; i <= n; i++) {
    f = file[i]; r = hrank(f); w = why[f]
    if (r == "") { print f "||" dir[i] "|; no rank in tests/lint/layers.sh: give it one"; continue }
    fo = hfolder(f)
    if (fo != dir[i]) w = w "; is in " dir[i] "/, its rank " r " belongs in " fo "/"
    m = split(callee[f], cs, " ")
    for (j = 1; j <= m; j++) {
      t = cs[j]; tr = hrank(t)
      if (tr == "") w = w "; calls" calls[f, t] " of " t " (no rank)"
      else if (tr + 0 >= r + 0)
        w = w "; calls" calls[f, t] " of " t " (rank " tr ", " (tr == r ? "sideways" : "upward") ")"
    }
    m = split(inc[f], hs, " ")
    for (j = 1; j <= m; j++) {
      h = hs[j]; hr = hrank(h)
      if (hr == "") w = w "; includes " h " (no rank)"
      else if (hr + 0 > r + 0 || (hr == r && fam(h) != fam(f)))
        w = w "; includes " h " (rank " hr ", " (hr == r ? "sideways" : "upward") ")"
    }
    print f "|" r "|" dir[i] "|" w
  }
}' >"$tmp/verdicts"

n=0
bad=0
while IFS='|' read -r f r d w; do
  n=$((n + 1))
  p=$f
  [ "$d" = . ] || p=$d/$f
  if [ -n "$w" ]; then
    echo "not ok $n - $p (rank $r): ${w#; }"
    bad=1
  else
    echo "ok $n - $p (rank $r) calls and includes only lower ranks"
  fi
done <"$tmp/verdicts"
[ "$n" -gt 0 ] || bail "no source file under $src"
echo "1..$n"
exit "$bad"
