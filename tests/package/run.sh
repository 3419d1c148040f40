#!/bin/bash
# tests/package/run.sh: the Debian package, as a Debian user gets it, under a real systemd.
#   1. builds it from this tree (apt-get build-dep, dpkg-buildpackage -us -uc -b), checks it with lintian (no error,
#      no warning), and builds it again one version up;
#   2. boots a pristine Debian root (debootstrap minbase + systemd, cached as a tarball under /var/tmp) with
#      systemd-nspawn, systemd as its PID 1, and installs the package there with `apt-get install ./baton_*.deb`;
#   3. checks that installing started and enabled nothing, starts baton@demo from /etc/baton/demo.yaml (the demo
#      server, which is not packaged, copied from the build tree to /usr/local/bin), reloads it with systemctl;
#   4. upgrades to the rebuilt package: baton's PID and the program's PID stay the same (`baton upgrade` when the new
#      baton has it, otherwise the running baton keeps the old binary, and the postinst says so);
#   5. purges the package: the running instance is not stopped; once the test stops it, nothing of the package is
#      left (files, units, dpkg's records, processes).
# Root, Debian (the root is the host's release, from the mirror apt uses). Missing tools and the build dependencies
# are installed with apt. Prints one "ok N - ..." / "not ok N - ..." line a check and "N passed, N failed"; exits 1
# when a check failed, 2 when the test could not run. KEEP=1 keeps the work directory (its path is printed).
set -u
shopt -s nullglob

src=$(cd "$(dirname "$0")/../.." && pwd)
: "${BOOT_SECONDS:=60}"
start_time=$SECONDS
passed=0 failed=0 n=0

ok() { n=$((n + 1)) passed=$((passed + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)) failed=$((failed + 1)); echo "not ok $n - $*"; }
# check DESCRIPTION COMMAND...: one check, passed when COMMAND succeeds.
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
# Gives up: the test could not run (not a failed check).
die() { echo "package test: CANNOT RUN: $*" >&2; echo "# $n passed... then could not run: $*"; exit 2; }
summary() {
  echo "$passed passed, $failed failed ($((SECONDS - start_time))s)"
  ((failed == 0))
}

[[ $(id -u) == 0 ]] || die "needs root (dpkg-buildpackage's build deps, debootstrap, systemd-nspawn)"
[[ -r /etc/os-release ]] && . /etc/os-release
suite=${VERSION_CODENAME:-}
[[ -n $suite ]] || die "no VERSION_CODENAME in /etc/os-release: not Debian?"

# --- Tools and build dependencies.
export DEBIAN_FRONTEND=noninteractive
need=()
for pair in dpkg-buildpackage:dpkg-dev dh:debhelper debootstrap:debootstrap systemd-nspawn:systemd-container \
  nsenter:util-linux curl:curl lintian:lintian; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
apt_updated=0
if ((${#need[@]})); then
  echo "# installing ${need[*]}"
  apt-get update -qq && apt_updated=1
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi
if ! (cd "$src" && dpkg-checkbuilddeps >/dev/null 2>&1); then
  echo "# installing the build dependencies (apt-get build-dep)"
  ((apt_updated)) || apt-get update -qq
  (cd "$src" && apt-get build-dep -y -qq ./ >/dev/null) || die "apt-get build-dep failed"
fi

work=$(mktemp -d /var/tmp/baton-package.XXXXXX)
nspawn_pid="" leader=""
# The container's PID 1, as a host PID: the child of systemd-nspawn that runs systemd.
nspawn_leader() {
  local pid
  for pid in $(cat /proc/"$nspawn_pid"/task/*/children 2>/dev/null); do
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == systemd ]] && { echo "$pid"; return 0; }
  done
  return 1
}
cleanup() {
  if [[ -n $nspawn_pid ]]; then
    [[ -n $leader ]] || leader=$(nspawn_leader)
    # SIGKILL to the container's PID 1 ends every process in it; then systemd-nspawn exits.
    [[ -z $leader ]] || kill -KILL "$leader" 2>/dev/null
    local deadline=$((SECONDS + 15))
    while kill -0 "$nspawn_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null
    wait "$nspawn_pid" 2>/dev/null
  fi
  if [[ -n ${KEEP:-} ]]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Build: this tree (tracked and untracked files, not the ignored build directories; without git, all but .git and
# build*), then a copy one version up.
mkdir -p "$work/v1" "$work/v2" "$work/debs/v1" "$work/debs/v2"
tree() {
  if command -v git >/dev/null && git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf -)
  else
    tar -C "$src" --exclude=./.git --exclude='./build*' -cf - .
  fi
}
tree | tar -C "$work/v1" --one-top-level=baton -xf - || die "cannot copy the tree"
cp -a "$work/v1/baton" "$work/v2/baton"
version=$(cd "$work/v1/baton" && dpkg-parsechangelog -S Version)
version2="$version+pkgtest1"
maintainer=$(cd "$work/v1/baton" && dpkg-parsechangelog -S Maintainer)
{
  printf 'baton (%s) unstable; urgency=medium\n\n  * Rebuild for tests/package/run.sh (the upgrade).\n\n' "$version2"
  printf ' -- %s  %s\n\n' "$maintainer" "$(date -R)"
  cat "$work/v1/baton/debian/changelog"
} >"$work/v2/baton/debian/changelog"

build() { # build DIR: dpkg-buildpackage in DIR/baton, log in DIR/build.log
  (cd "$1/baton" && dpkg-buildpackage -us -uc -b) >"$1/build.log" 2>&1
}
t=$SECONDS
if build "$work/v1"; then ok "dpkg-buildpackage -us -uc -b builds baton $version ($((SECONDS - t))s)"; else
  not_ok "dpkg-buildpackage -us -uc -b builds baton $version"; tail -n 30 "$work/v1/build.log" | sed 's/^/# /'
  summary; exit 1
fi
t=$SECONDS
# The rebuild only needs a new version: the unit tests ran in the first build.
if DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" build "$work/v2"; then
  ok "the rebuild as $version2 ($((SECONDS - t))s)"
else
  not_ok "the rebuild as $version2"; tail -n 30 "$work/v2/build.log" | sed 's/^/# /'; summary; exit 1
fi
lint=$(lintian --fail-on error,warning "$work"/v1/baton_*.changes 2>&1)
lint_rc=$?
lint=$(grep -v '^running with root privileges' <<<"$lint")
if [[ $lint_rc == 0 ]]; then ok "lintian: no error, no warning${lint:+ ($lint)}"; else
  not_ok "lintian: no error, no warning"; echo "$lint" | sed 's/^/# /'
fi
built1=("$work"/v1/baton_*.deb) built2=("$work"/v2/baton_*.deb)
[[ ${#built1[@]} == 1 && ${#built2[@]} == 1 ]] || die "expected one baton_*.deb a build: ${built1[*]} ${built2[*]}"
# baton loads libsystemd and libcyaml with dlopen() (src/base/libsystemd.c, src/config/config-libcyaml.c), which
# dpkg-shlibdeps cannot see: debian/control names them.
depends=$(dpkg-deb -f "${built1[0]}" Depends)
if [[ $depends == *libsystemd0* && $depends == *libcyaml1* ]]; then ok "Depends names the dlopen()ed libraries: $depends"; else
  not_ok "Depends names the dlopen()ed libraries libsystemd0 and libcyaml1: $depends"
fi
cp "${built1[0]}" "$work/debs/v1/" && cp "${built2[0]}" "$work/debs/v2/"
# Their paths inside the container.
deb1=/debs/v1/$(basename "${built1[0]}") deb2=/debs/v2/$(basename "${built2[0]}")
demo=("$work"/v1/baton/obj-*/baton-demo)
[[ ${#demo[@]} == 1 ]] || die "no baton-demo in the build tree"

# --- The pristine root: minbase, systemd to boot, and the package's run-time dependencies (the container has no
# network: apt installs the local .deb from what is there). Cached per release and package list.
include=systemd,libcyaml1,libyaml-0-2
cache=/var/tmp/baton-package-root-$suite-$(echo "$include" | md5sum | cut -c1-8).tar
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
[[ -n $mirror ]] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
(
  flock 9
  if [[ ! -f $cache ]]; then
    echo "# debootstrap $suite with $include (once; cached in $cache)"
    base=$(mktemp -d /var/tmp/baton-package-root.XXXXXX)
    debootstrap --variant=minbase --include="$include" "$suite" "$base" "$mirror" >"$cache.log" 2>&1 ||
      { echo "debootstrap failed, see $cache.log" >&2; rm -rf "$base"; exit 1; }
    chmod 755 "$base" # mktemp's 0700 would become the container's / (no program could run as nobody)
    tar -C "$base" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache" && rm -rf "$base"
  fi
) 9>"$cache.lock" || die "no $suite root"
root=$work/root
mkdir "$root" && tar -C "$root" -xf "$cache" && chmod 755 "$root" || die "cannot unpack $cache"

# --- Boot it, as tests/systemd/helpers.bash ct_boot does.
systemd-nspawn -q -D "$root" --register=no --keep-unit --private-network --machine="baton-pkg-$$" \
  --bind-ro="$work/debs:/debs" -b -- systemd.firstboot=off </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
deadline=$((SECONDS + BOOT_SECONDS)) state=""
while ((SECONDS < deadline)); do
  kill -0 "$nspawn_pid" 2>/dev/null || break
  if [[ -z $leader ]]; then
    leader=$(nspawn_leader)
  fi
  if [[ -n $leader ]]; then
    state=$(timeout 5 nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null)
    [[ $state == running || $state == degraded ]] && break
  fi
  sleep 0.2
done
[[ $state == running || $state == degraded ]] ||
  die "the container did not boot within ${BOOT_SECONDS}s (state '$state'): $(tail -n 20 "$work/console.log")"
echo "# booted $suite in $((SECONDS - start_time))s so far"

ct() { nsenter -t "$leader" -a "$@"; }
sctl() { ct systemctl --no-pager "$@"; }
prop() { sctl show -p "$2" --value "$1"; }
# The demo's answer inside the container: "hello from baton-demo pid=N generation=G".
answer() { nsenter -t "$leader" -n curl -fsS --max-time 5 http://127.0.0.1:8080/ 2>&1; }
answer_field() { answer | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
# Every path of the root but the kernel's, the run-time ones and the logs and databases of dpkg, apt and systemd.
snapshot() {
  ct find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
    -o -path /var/log -o -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache -o -path /var/lib/systemd \
    -o -path /debs \) -prune -o -print | sort
}
# Predicates for check, on values (never interpolated into code).
equals() { [[ $1 == "$2" ]]; }
contains() { [[ $1 == *"$2"* ]]; }
differs() { [[ $1 != "$2" ]]; }
quiet() { "$@" >/dev/null 2>&1; }
# The same PID, and a PID at all.
same_pid() { [[ $1 =~ ^[1-9][0-9]*$ && $1 == "$2" ]]; }
# Polls "$@" for up to 20 s.
wait_for() { local d=$((SECONDS + 20)); until "$@" 2>/dev/null; do ((SECONDS < d)) || return 1; sleep 0.1; done; }
unit_is() { [[ $(prop baton@demo.service ActiveState) == "$1" ]]; }

snapshot >"$work/before"

# --- Install.
t=$SECONDS
if ct env DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb1" >"$work/install.log" 2>&1; then
  ok "apt-get install ./$(basename "$deb1") ($((SECONDS - t))s)"
else
  not_ok "apt-get install ./$(basename "$deb1")"; sed 's/^/# /' "$work/install.log"; summary; exit 1
fi
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
preload=/usr/lib/$multiarch/baton/libbaton-preload.so
check "/usr/bin/baton runs ($(ct /usr/bin/baton --version 2>&1))" quiet ct /usr/bin/baton --version
check "the preload shim is at $preload, where baton looks by default" \
  bash -c "[[ -f '$root$preload' ]] && grep -qaF '$preload' '$root/usr/bin/baton'"
check "baton(1) and baton.yaml(5) are installed" \
  bash -c "[[ -f '$root/usr/share/man/man1/baton.1.gz' && -f '$root/usr/share/man/man5/baton.yaml.5.gz' ]]"
check "the config examples are in /usr/share/doc/baton/examples/" \
  bash -c "[[ -f '$root/usr/share/doc/baton/examples/minimal.yaml' && -f '$root/usr/share/doc/baton/examples/systemd/baton-demo-activated.socket' ]]"
unit=$(sctl cat baton@.service 2>&1)
check "baton@.service is in systemd's unit directory ($(echo "$unit" | head -n1))" \
  grep -qxE '# (/usr)?/lib/systemd/system/baton@\.service' <<<"$unit"
check "baton@.service runs /usr/bin/baton run -c /etc/baton/%i.yaml" \
  contains "$unit" $'\nExecStart=/usr/bin/baton run -c /etc/baton/%i.yaml\n'
check "the demo program is not in the package" bash -c "! nsenter -t $leader -a dpkg -L baton | grep -q '/baton-demo\$'"
check "installing started nothing" equals "$(sctl list-units --no-legend --all 'baton*')" ""
check "installing enabled nothing" bash -c "! find '$root/etc/systemd' -name '*baton*' | grep -q ."

# --- Start, serve, reload.
install -D -m 644 "$src/contrib/systemd/demo.yaml" "$root/etc/baton/demo.yaml"
install -D -m 755 "${demo[0]}" "$root/usr/local/bin/baton-demo"
if sctl start baton@demo >"$work/start.log" 2>&1 && unit_is active; then ok "systemctl start baton@demo"; else
  not_ok "systemctl start baton@demo: $(cat "$work/start.log")"; ct journalctl --no-pager -u baton@demo | sed 's/^/# /'
fi
main=$(prop baton@demo MainPID)
check "MainPID $main is /usr/bin/baton" equals "$(ct readlink "/proc/$main/exe")" /usr/bin/baton
a1=$(answer)
check "baton@demo serves: $a1" contains "$a1" generation=1
program1=$(answer_field pid)
check "systemctl reload baton@demo" sctl reload baton@demo
a2=$(answer)
check "a new generation serves after the reload: $a2" contains "$a2" generation=2
check "a new program PID after the reload" differs "$(answer_field pid)" "$program1"
check "MainPID unchanged by the reload" same_pid "$(prop baton@demo MainPID)" "$main"
program2=$(answer_field pid)

# --- Upgrade to the rebuilt package.
t=$SECONDS
if ct env DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb2" >"$work/upgrade.log" 2>&1; then
  ok "apt-get install ./$(basename "$deb2") (an upgrade, $((SECONDS - t))s)"
else
  not_ok "apt-get install ./$(basename "$deb2")"; sed 's/^/# /' "$work/upgrade.log"
fi
check "baton $version2 is installed" equals "$(ct dpkg-query -W -f='${Version}' baton)" "$version2"
check "baton@demo still active after the upgrade" unit_is active
check "MainPID unchanged by the upgrade ($main)" same_pid "$(prop baton@demo MainPID)" "$main"
check "NRestarts 0" equals "$(prop baton@demo NRestarts)" 0
a3=$(answer)
check "the program's PID unchanged by the upgrade ($program2): $a3" same_pid "$(answer_field pid)" "$program2"
check "still generation 2 after the upgrade" contains "$a3" generation=2
check "systemd does not need a daemon-reload" equals "$(prop baton@demo NeedDaemonReload)" no
exe=$(ct readlink "/proc/$main/exe")
if ct baton --help | grep -Eq '^[[:space:]]+(baton[[:space:]]+)?upgrade[[:space:]]'; then
  check "baton upgrade moved baton@demo to the new binary (postinst says so)" \
    grep -q 'baton@demo.service now runs the new baton binary' "$work/upgrade.log"
  check "MainPID runs the new /usr/bin/baton ($exe)" equals "$exe" /usr/bin/baton
  check "baton status counts the upgrade" eval 'ct baton status -c /etc/baton/demo.yaml | grep -q "upgrades: 1$"'
else
  check "postinst says running instances keep the old binary (this baton has no 'baton upgrade')" \
    grep -q 'running instances keep the old baton binary until restarted.*baton@demo.service' "$work/upgrade.log"
  check "MainPID still runs the old, replaced binary ($exe)" equals "$exe" "/usr/bin/baton (deleted)"
fi
grep -E '^baton: ' "$work/upgrade.log" | sed 's/^/# postinst: /'
check "systemctl reload after the upgrade" sctl reload baton@demo
check "a new generation serves: $(answer)" equals "$(answer_field generation)" 3

# --- Purge: the instance keeps serving until stopped, then nothing of the package is left.
ct dpkg -L baton >"$work/files"
if ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y baton >"$work/purge.log" 2>&1; then
  ok "apt-get purge baton"
else
  not_ok "apt-get purge baton"; sed 's/^/# /' "$work/purge.log"
fi
check "purging stopped nothing: baton@demo still active" unit_is active
a4=$(answer)
check "purging stopped nothing: baton@demo still serves: $a4" contains "$a4" generation=3
grep -E '^baton: ' "$work/purge.log" | sed 's/^/# postrm: /'
check "systemctl stop baton@demo" sctl stop baton@demo
check "no baton process is left" bash -c "! nsenter -t $leader -a sh -c 'cat /proc/[0-9]*/comm' 2>/dev/null | grep -qxE 'baton|baton-demo'"
check "dpkg knows no baton any more" bash -c "! nsenter -t $leader -a dpkg-query -W -f='\${db:Status-Status}' baton 2>/dev/null | grep -qv not-installed"
left=$(while read -r f; do [[ $f == / || ! -e $root$f || -d $root$f && $f != *baton* ]] || echo "$f"; done <"$work/files")
check "none of the package's files is left${left:+: $left}" test -z "$left"
check "no baton unit is known to systemd" equals "$(sctl list-unit-files --no-legend 'baton*')" ""
check "no dpkg or deb-systemd-helper record of baton is left" \
  bash -c "! ls '$root'/var/lib/dpkg/info/baton.* '$root'/var/lib/systemd/deb-systemd-helper-*/*baton* 2>/dev/null | grep -q ."
snapshot >"$work/after"
# What the test itself created: the admin's config and the demo server.
extra=$(comm -13 "$work/before" "$work/after" | grep -vxE '/etc/baton|/etc/baton/demo.yaml|/usr/local/bin/baton-demo')
check "nothing else is left on the file system${extra:+: $(echo $extra)}" test -z "$extra"

echo "# cold caches: debootstrap adds a few minutes once; $(basename "$cache") is reused after"
summary
