#!/usr/bin/env bats
# --set KEY=VALUE and quick use (baton(1) OPTIONS, COMMANDS; baton.yaml(5) PARSING RULES): every kind of scalar key set
# over the file or the defaults and shown by `baton check`; each bad option refused with an error that names it (100
# for its form, 101 for its key or value, as a file's), no child started; `run` and `reload` use the values set; quick
# use works for a program that never sends READY=1, and is silent while all goes well (but under systemd, or with
# --log-level info).

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
  probe_setup
  CTL="$BATS_TEST_TMPDIR/ctl.sock"
}
teardown() { teardown_processes; }


# expect_set_error MESSAGE BATON_ARG...: `baton check ARGS` and `baton run ARGS -- probe` both exit 101 with
# "baton: MESSAGE" (no file named, no line), and no child ran.
expect_set_error() {
  local msg=$1
  shift
  run --separate-stderr "$BATON" check "$@"
  echo "check: status $status, stdout: $output, stderr: $stderr"
  assert_equal "$status" 101
  assert_equal "$output" ""
  assert_equal "$stderr" "baton: $msg"
  run --separate-stderr timeout 10 "$BATON" run "$@" -- "$PROBE"
  echo "run: status $status, stderr: $stderr"
  assert_equal "$status" 101
  stderr_has "$msg"
  [[ "$stderr" != *"(line "* ]]
  assert_no_child
}

@test "check --set without -c: every kind of key over the defaults of quick use" {
  run --separate-stderr "$BATON" check \
    --set stop.timeout=5s --set readiness.timeout=250ms \
    --set program.fd-store=true \
    --set restart.policy=never --set reload.strategy=restart --set systemd.fd-store=false \
    --set stop.signal=INT --set reload.signal=10 \
    --set program.user=nobody --set program.working-directory=/srv --set control.socket= \
    --set "program.environment.GREETING=hello world" --set program.environment.EQ=a=b \
    --set program.stdin=/dev/null
  echo "stderr: $stderr"
  assert_success
  assert_output --partial $'stop:\n  signal: SIGINT\n  timeout: 5s\n'           # duration, signal by name
  assert_output --partial $'readiness:\n  type: none\n  timeout: 250ms\n'      # quick use's default type
  assert_output --partial "  fd-store: true"                                    # boolean
  assert_output --partial $'restart:\n  policy: never\n'                        # enum
  assert_output --partial $'reload:\n  strategy: restart\n  signal: SIGUSR1\n'  # signal by number
  assert_output --partial $'systemd:\n  fd-store: false\n'
  assert_output --partial '  user: "nobody"'                                    # string
  assert_output --partial '  working-directory: "/srv"'
  assert_output --partial $'control:\n  socket: ""\n'                           # "" disables the socket
  assert_output --partial '"GREETING": "hello world"'                           # environment
  assert_output --partial '"EQ": "a=b"'
  assert_output --partial '  stdin: "/dev/null"'
  # What check prints, check accepts again unchanged.
  grep -v '^#' <<<"$output" >"$BATS_TEST_TMPDIR/printed.yaml"
  local first=$output
  run --separate-stderr "$BATON" check -c "$BATS_TEST_TMPDIR/printed.yaml"
  assert_success
  assert_equal "$(grep -v '^#' <<<"$output")" "$(grep -v '^#' <<<"$first")"
}

@test "check -c FILE --set: the option replaces the file's value, the rest stays the file's; the last one wins" {
  cat >"$CFG" <<EOF
program:
  command: ["$PROBE"]
  environment: {A: "1", B: "2"}
readiness: {type: notify, timeout: 5s}
stop: {timeout: 5}
restart: {policy: always}
EOF
  # The file alone is invalid (a duration without its unit) and says where.
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_equal "$status" 101
  stderr_has "$CFG: key 'stop.timeout'"
  stderr_has "(line 5)"
  run --separate-stderr "$BATON" check -c "$CFG" --set stop.timeout=5 --set stop.timeout=7s \
    --set program.environment.A=one --set program.environment.C=3 --set readiness.type=none
  echo "stderr: $stderr"
  assert_success
  assert_output --partial "  timeout: 7s"
  assert_output --partial $'  environment:\n    "A": "one"\n    "B": "2"\n    "C": "3"\n'
  assert_output --partial $'readiness:\n  type: none\n  timeout: 5s\n'
  assert_output --partial "  policy: always"
  # A file keeps notify as its default.
  printf 'program:\n  command: ["%s"]\n' "$PROBE" >"$CFG"
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_output --partial $'readiness:\n  type: notify\n'
  run --separate-stderr "$BATON" check -c "$CFG" --set program.stdin=inherit
  assert_output --partial "  stdin: inherit"
}

@test "check --set program.stdin names a --listen listener" {
  run --separate-stderr "$BATON" check --listen "web=tcp://127.0.0.1:$PORT" --set program.stdin=web -- "$PROBE"
  assert_success
  assert_output --partial '  stdin: "web"'
  expect_set_error "--set program.stdin=web: names no listener: 'web'" --set program.stdin=web
}

@test "a malformed --set (no '=', an empty key) is a usage error (100) naming the option" {
  run --separate-stderr "$BATON" check --set stop.timeout
  assert_usage_error "--set stop.timeout: expected KEY=VALUE"
  run --separate-stderr "$BATON" check --set =5s
  assert_usage_error "--set =5s: empty key"
  run --separate-stderr timeout 10 "$BATON" run --set readiness.type -- "$PROBE"
  assert_usage_error "--set readiness.type: expected KEY=VALUE"
  assert_no_child
  run --separate-stderr "$BATON" check --set
  assert_usage_error "option '--set' needs an argument"
  # --set is run's and check's only.
  run --separate-stderr "$BATON" status --control "$CTL" --set stop.timeout=5s
  assert_usage_error "--set is an option of run and check"
  run --separate-stderr "$BATON" reload --control "$CTL" --set stop.timeout=5s
  assert_usage_error "--set is an option of run and check"
}

@test "--set of an unknown key is an error (101) naming the option" {
  expect_set_error "--set readiness.tpye=none: unknown key 'readiness.tpye' (the keys of readiness: type, timeout, command, interval, pattern, stream, pid-file, delay)" \
    --set readiness.tpye=none
  expect_set_error "--set stpo.timeout=5s: unknown key 'stpo.timeout' (the sections: listeners, program, readiness, reload, stop, restart, notify, control, systemd)" \
    --set stpo.timeout=5s
  expect_set_error "--set stop=5s: stop is a section: set one of its keys (signal, timeout, drain)" --set stop=5s
}

@test "--set of a list key or a listener key is an error (101) that says where it goes" {
  expect_set_error "--set program.command=/bin/true: program.command is a list: write it in the file, or the command after --" \
    --set program.command=/bin/true
  expect_set_error "--set readiness.command=true: readiness.command is a list: write it in the file" \
    --set readiness.type=exec --set readiness.command=true
  expect_set_error "--set program.compat=einhorn: program.compat is a list: write it in the file" \
    --set program.compat=einhorn
  expect_set_error "--set listeners.0.backlog=1: listeners is a list, whose keys cannot be set: --listen NAME=ADDRESS adds a listener, the file gives its options" \
    --set listeners.0.backlog=1
  expect_set_error "--set program.environment=A: program.environment is a mapping: set one variable with --set program.environment.NAME=VALUE" \
    --set program.environment=A
}

@test "--set of a bad value of each type is an error (101) naming the option, not the file" {
  expect_set_error "--set stop.timeout=5: expected a duration with its unit, such as 250ms, 30s, 5m or 1h" \
    --set stop.timeout=5
  expect_set_error "--set program.fd-store=yes: expected true or false" --set program.fd-store=yes
  expect_set_error "--set restart.policy=sometimes: expected on-failure, always or never" --set restart.policy=sometimes
  expect_set_error "--set readiness.type=ready: expected notify, exec, log, pidfile, delay or none" \
    --set readiness.type=ready
  expect_set_error "--set stop.signal=SIGFOO: expected a signal such as SIGTERM, TERM or 15" --set stop.signal=SIGFOO
  expect_set_error "--set program.user=: must not be empty" --set program.user=
  expect_set_error "--set program.working-directory=srv: must be an absolute path" --set program.working-directory=srv
  expect_set_error "--set program.stdin=/dev/zero: expected inherit, /dev/null or a listener name" \
    --set program.stdin=/dev/zero
  expect_set_error "--set program.environment.1X=a: invalid variable name (no '=', spaces or control characters; not starting with a digit): '1X'" \
    --set program.environment.1X=a
  # A rule across keys names the option that broke it.
  expect_set_error "--set readiness.type=exec: readiness.type exec needs readiness.command" --set readiness.type=exec
  # Over a file: still the option, not the file's line.
  printf 'program:\n  command: ["%s"]\nstop: {timeout: 5s}\n' "$PROBE" >"$CFG"
  run --separate-stderr "$BATON" check -c "$CFG" --set stop.timeout=5
  assert_equal "$status" 101
  assert_equal "$stderr" "baton: --set stop.timeout=5: expected a duration with its unit, such as 250ms, 30s, 5m or 1h"
  run --separate-stderr timeout 10 "$BATON" run -c "$CFG" --set stop.timeout=5
  assert_equal "$status" 101
  stderr_has "--set stop.timeout=5: expected a duration"
  assert_no_child
}

@test "run --set readiness.type=none over a file: a program that never notifies is ready at once" {
  printf 'program:\n  command: ["%s"]\nreadiness: {timeout: 30s}\ncontrol: {socket: ""}\n' "$PROBE" >"$CFG"
  PROBE_NOTIFY=none probe_start run -c "$CFG" --set readiness.type=none
  wait_log "generation 1 is ready"
  log_has "readiness.type is none"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "run --set readiness.type=notify without a file: the set type is used (not ready: exit 102)" {
  PROBE_NOTIFY=none baton_start run --set readiness.type=notify --set readiness.timeout=300ms -- "$PROBE"
  baton_wait_exit
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 102
  log_has "was not ready within 300ms \(readiness.timeout\)"
}

@test "run --set stop.timeout and stop.signal: a program that ignores SIGTERM is killed after the set timeout" {
  PROBE_IGNORE_TERM=1 probe_start run --log-level info --set stop.timeout=300ms --set stop.signal=TERM -- "$PROBE"
  wait_log "generation 1 is ready"
  kill -TERM "$BATON_PID"
  # The default stop.timeout is 30s: only the set 300ms ends it this soon.
  WAIT_SECONDS=10 baton_wait_exit
  cat "$BATON_LOG"
  log_has "stopping generation 1 \(pid [0-9]+\) with SIGTERM"
  log_has "did not stop within stop.timeout, sending SIGKILL"
  assert_equal "$BATON_STATUS" 0
}

@test "run --set program.environment.NAME=VALUE reaches the program, over the file's" {
  printf 'program:\n  command: ["%s"]\n  environment: {MARK: file, KEEP: kept}\ncontrol: {socket: ""}\n' "$PROBE" >"$CFG"
  PROBE_ENV=MARK,KEEP,NEW probe_start run -c "$CFG" --set program.environment.MARK=from-set \
    --set program.environment.NEW=new
  assert_equal "$(rep env.MARK)" from-set
  assert_equal "$(rep env.KEEP)" kept
  assert_equal "$(rep env.NEW)" new
  baton_stop
}

@test "reload re-applies the --set options over the re-read file" {
  cat >"$CFG" <<EOF
listeners:
  - {name: web, address: "tcp://127.0.0.1:$PORT"}
program:
  command: ["$PROBE"]
  environment: {MARK: file-1}
readiness: {timeout: 5s}
stop: {timeout: 2s}
control: {socket: "$CTL"}
EOF
  # The probe never notifies: with the file's readiness.type notify, only the option makes a generation ready.
  export PROBE_NOTIFY=none PROBE_ENV=MARK,FROM_SET,BATON_GENERATION
  probe_start run -c "$CFG" --set readiness.type=none --set program.environment.FROM_SET=yes
  wait_log "generation 1 is ready"
  assert_equal "$(rep env.FROM_SET)" yes
  # The file changes; the options still apply over it.
  sed -i 's/MARK: file-1/MARK: file-2/' "$CFG"
  rm -f "$REPORT"
  run --separate-stderr timeout 20 "$BATON" reload -c "$CFG"
  echo "reload: status $status, stdout: $output, stderr: $stderr"
  assert_success
  wait_report
  assert_equal "$(rep env.BATON_GENERATION)" 2
  assert_equal "$(rep env.MARK)" file-2
  assert_equal "$(rep env.FROM_SET)" yes
  # Ready although it never notified: the option's readiness.type none, not the file's notify.
  assert_output --partial "generation 2"
  # An invalid file fails the reload and names the file, not the options; generation 2 keeps serving.
  sed -i 's/timeout: 2s/timeout: 2/' "$CFG"
  run --separate-stderr timeout 20 "$BATON" reload -c "$CFG"
  assert_equal "$status" 1
  stderr_has "key 'stop.timeout'"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "quick use: a program that never sends READY=1 is ready at once" {
  PROBE_NOTIFY=none probe_start run --log-level info --listen "web=tcp://127.0.0.1:$PORT" -- "$PROBE"
  wait_log "generation 1 is ready"
  log_has "readiness.type is none"
  assert_equal "$(rep env.LISTEN_FDNAMES)" web
  baton_stop
  assert_equal "$BATON_STATUS" 0
}

@test "quick use --log-level info: run -- true exits 0, logged as information" {
  baton_start run --log-level info -- true
  baton_wait_exit
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 0
  log_has "info: exiting with status 0"
  # readiness.type none makes it ready before its exit can be seen: a program that is done is no error.
  log_has "generation 1 \(pid [0-9]+\): readiness.type is none"
  run log_has "error"
  assert_failure
}

# A program that writes one line to stdout and one to stderr, then sleeps until it is stopped.
chatty() { printf '%s\n' /bin/sh -c 'echo out; echo err >&2; exec sleep 100000'; }

@test "quick use is silent while all goes well: the program's output only, through a reload and a stop" {
  local -a prog
  mapfile -t prog < <(chatty)
  baton_start run -- "${prog[@]}"
  wait_log '^err$'
  wait_log '^out$'
  # A reload (SIGHUP) starts generation 2 and stops generation 1; a stop ends it: all without a word of baton's.
  kill -HUP "$BATON_PID"
  wait_for eval '(( $(grep -c "^out$" "$BATON_LOG") == 2 ))'
  baton_stop
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 0
  assert_equal "$(sort "$BATON_LOG" | tr '\n' ' ')" "err err out out "
}

@test "quick use still prints warnings and errors" {
  # A warning: the program ignores SIGTERM and is killed after stop.timeout.
  PROBE_IGNORE_TERM=1 probe_start run --set stop.timeout=300ms -- "$PROBE"
  kill -TERM "$BATON_PID"
  WAIT_SECONDS=10 baton_wait_exit
  cat "$BATON_LOG"
  assert_equal "$BATON_STATUS" 0
  log_has "baton: warning: generation 1 \(pid [0-9]+\) did not stop within stop.timeout, sending SIGKILL"
  run log_has "info:"
  assert_failure
  # An error: the program cannot be started.
  run --separate-stderr timeout 10 "$BATON" run -- "$BATS_TEST_TMPDIR/missing"
  assert_equal "$status" 102
  stderr_has "baton: error: "
  stderr_has "exec $BATS_TEST_TMPDIR/missing: No such file or directory"
}

@test "quick use --log-level info, a config file, and stderr the journal (JOURNAL_STREAM) show the lifecycle" {
  local -a prog
  mapfile -t prog < <(chatty)
  # --log-level info.
  run --separate-stderr timeout 10 "$BATON" run --log-level info -- /bin/sh -c 'exit 0'
  assert_equal "$status" 0
  stderr_has "baton: info: generation 1 (pid "
  stderr_has "baton: info: exiting with status 0"
  # A config file: the log stays as it is.
  CFG_READINESS="{type: none}" CFG_EXTRA="restart: {policy: never}" write_config /bin/sh -c 'exit 0'
  run --separate-stderr timeout 10 "$BATON" run -c "$CFG"
  assert_equal "$status" 0
  stderr_has "baton: info: generation 1 (pid "
  # Under systemd: JOURNAL_STREAM names stderr's device:inode, as systemd.exec(5) sets it. Lines carry <N>.
  local journal="$BATS_TEST_TMPDIR/journal"
  : >"$journal"
  JOURNAL_STREAM=$(stat -c '%d:%i' "$journal") timeout 10 "$BATON" run -- /bin/sh -c 'exit 0' 2>>"$journal"
  cat "$journal"
  grep -q '^<6>generation 1 (pid [0-9]*): readiness.type is none' "$journal"
  grep -q '^<6>exiting with status 0' "$journal"
  # A JOURNAL_STREAM inherited from elsewhere (not stderr) does not count: quick use stays silent.
  : >"$journal"
  JOURNAL_STREAM=1:1 timeout 10 "$BATON" run -- /bin/sh -c 'exit 0' 2>>"$journal"
  assert_equal "$(cat "$journal")" ""
}
