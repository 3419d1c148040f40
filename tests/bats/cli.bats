#!/usr/bin/env bats
# The command line (baton(1), SYNOPSIS, OPTIONS, EXIT STATUS): --help/--version, usage errors (100), `check` and its
# normalized output, and how `run -c FILE` combines with --listen and -- COMMAND.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() { probe_setup; }
teardown() { teardown_processes; }

EXAMPLES="$TESTS_DIR/../config-examples"


@test "--help and -h print the usage and exit 0" {
  local opt
  for opt in --help -h; do
    run --separate-stderr "$BATON" "$opt"
    assert_success
    assert_output --partial "Usage:"
    assert_output --partial "baton run"
    assert_output --partial "baton check"
    assert_output --partial "--set KEY=VALUE"
    assert_equal "$stderr" ""
  done
  # After a subcommand, too.
  run --separate-stderr "$BATON" run --help
  assert_success
  assert_output --partial "Usage:"
}

@test "--version and -V print the version and exit 0" {
  local opt
  for opt in --version -V; do
    run --separate-stderr "$BATON" "$opt"
    assert_success
    assert_output --regexp '^baton [0-9]+\.[0-9]+'
  done
}

@test "no command is a usage error (100)" {
  run --separate-stderr "$BATON"
  assert_usage_error "missing command"
}

@test "an unknown command is a usage error (100)" {
  run --separate-stderr "$BATON" frobnicate
  assert_usage_error "'frobnicate'"
}

@test "an unknown option is a usage error (100) that names it" {
  run --separate-stderr "$BATON" run --frobnicate -- "$PROBE"
  assert_usage_error "--frobnicate"
  assert_no_child
  run --separate-stderr "$BATON" check --frobnicate -c "$CFG"
  assert_usage_error "--frobnicate"
}

@test "run with a stray word (not after --) is a usage error (100)" {
  run --separate-stderr timeout 10 "$BATON" run --listen "x=tcp://127.0.0.1:$PORT" "$PROBE"
  assert_usage_error "'$PROBE'"
  assert_no_child
}

@test "run --listen without a command fails with 'no program' (101)" {
  run --separate-stderr timeout 10 "$BATON" run --listen "x=tcp://127.0.0.1:$PORT"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 101
  stderr_has "no program"
}

@test "run -- with nothing after it is a usage error (100)" {
  run --separate-stderr timeout 10 "$BATON" run --listen "x=tcp://127.0.0.1:$PORT" --
  assert_usage_error "-- must be followed by a command"
}

@test "an invalid --log-level is a usage error (100)" {
  run --separate-stderr timeout 10 "$BATON" run --log-level loud -- "$PROBE"
  assert_usage_error "'loud'"
  assert_no_child
}

@test "check without -c prints the defaults of quick use: readiness.type none, restart.policy never, stdin inherit" {
  run --separate-stderr "$BATON" check
  assert_success
  assert_equal "$stderr" ""
  assert_output --partial $'readiness:\n  type: none\n'
  assert_output --partial $'restart:\n  policy: never\n'
  assert_output --partial $'\n  stdin: inherit\n'
  assert_output --partial "program.command is not set"
  # --set brings restarts back to quick use.
  run --separate-stderr "$BATON" check --set restart.policy=on-failure
  assert_success
  assert_output --partial $'restart:\n  policy: on-failure\n'
  # With a file, notify and on-failure stay the defaults.
  printf 'stop: {timeout: 2s}\n' >"$CFG"
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_success
  assert_output --partial $'readiness:\n  type: notify\n'
  assert_output --partial $'restart:\n  policy: on-failure\n'
}

@test "check takes --listen and -- COMMAND like run, and prints what run would use" {
  run --separate-stderr "$BATON" check --listen "web=tcp://127.0.0.1:$PORT" -- "$PROBE" --fd "{fd:web}"
  assert_success
  assert_output --partial "name: \"web\""
  assert_output --partial "command: [\"$PROBE\", \"--fd\", \"{fd:web}\"]"
  refute_output --partial "program.command is not set"
  # The same errors as run: a placeholder naming no listener.
  run --separate-stderr "$BATON" check --listen "web=tcp://127.0.0.1:$PORT" -- "$PROBE" "{fd:wbe}"
  assert_equal "$status" 101
  stderr_has "{fd:wbe} names no listener"
  # --log-level stays run's.
  run --separate-stderr "$BATON" check --log-level debug
  assert_usage_error "--log-level is an option of 'run' only"
}

@test "check prints the normalized config, which check accepts again unchanged" {
  cat >"$CFG" <<EOF
# a comment, which the normalized form drops
listeners:
  - name: web
    address: tcp://127.0.0.1:$PORT
    backlog: 128
    nodelay: true
  - name: local
    address: unix:$BATS_TEST_TMPDIR/local.sock
    mode: 660
program:
  command: ["$PROBE", "--fd", "{fd:local}"]
  environment: {GREETING: hello}
stop: {signal: TERM, timeout: 90s}
control: {socket: "$BATS_TEST_TMPDIR/ctl.sock"}
EOF
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_success
  assert_equal "$stderr" ""
  local first=$output
  # The values as written, normalized...
  assert_output --partial "backlog: 128"
  assert_output --partial "nodelay: true"
  assert_output --regexp "mode: \"?0660\"?"
  assert_output --partial "GREETING"
  assert_output --regexp "signal: (SIG)?TERM"
  # ...and every default filled in.
  assert_output --partial "reuse-address: true"
  assert_output --partial "strategy: replace"
  assert_output --partial "policy: on-failure"
  refute_output --partial "a comment"

  echo "$first" >"$BATS_TEST_TMPDIR/normalized.yaml"
  run --separate-stderr "$BATON" check -c "$BATS_TEST_TMPDIR/normalized.yaml"
  assert_success
  assert_equal "$output" "$first"
}

@test "every config in config-examples/ passes check and round-trips" {
  local f n=0 first
  for f in "$EXAMPLES"/*.yaml; do
    n=$((n + 1))
    run --separate-stderr "$BATON" check -c "$f"
    echo "$f: status $status, stderr: $stderr"
    assert_success
    assert_output --partial "program:"
    first=$output
    echo "$first" >"$BATS_TEST_TMPDIR/round.yaml"
    run --separate-stderr "$BATON" check -c "$BATS_TEST_TMPDIR/round.yaml"
    assert_success
    # Only the comment with the derived control socket path differs: it depends on the file's path.
    assert_equal "$(grep -v '^# control.socket:' <<<"$output")" "$(grep -v '^# control.socket:' <<<"$first")"
    # Checked again at the same path, the output is the input, byte for byte.
    first=$output
    echo "$first" >"$BATS_TEST_TMPDIR/round.yaml"
    run --separate-stderr "$BATON" check -c "$BATS_TEST_TMPDIR/round.yaml"
    assert_success
    assert_equal "$output" "$first"
  done
  # minimal.yaml, web.yaml and every-listener.yaml at least (baton.yaml(5) EXAMPLES), and one per program of programs.bats.
  ((n >= 9))
}

@test "check of a file without program.command is valid, with a note" {
  cat >"$CFG" <<EOF
listeners:
  - {name: web, address: "tcp://127.0.0.1:$PORT"}
EOF
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_success
  assert_output --partial "program.command is not set"
  assert_output --partial "name: \"web\""
}

@test "run -c FILE --listen is an error (101) when the file has listeners" {
  probe_config "  - {name: web, address: \"tcp://127.0.0.1:$PORT\"}"
  run --separate-stderr timeout 10 "$BATON" run -c "$CFG" --listen "other=tcp://127.0.0.1:$((PORT + 1))"
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 101
  stderr_has "$CFG has listeners already"
  assert_no_child
}

@test "run -c FILE -- COMMAND is an error (101) when the file has a command" {
  probe_config "  - {name: web, address: \"tcp://127.0.0.1:$PORT\"}"
  run --separate-stderr timeout 10 "$BATON" run -c "$CFG" -- "$PROBE" from-cli
  echo "status $status, stderr: $stderr"
  assert_equal "$status" 101
  stderr_has "$CFG has program.command already"
  assert_no_child
}

@test "run -c FILE takes --listen and -- COMMAND when the file leaves them out" {
  # The file gives only a stop section: listeners and command come from the command line.
  printf 'stop: {timeout: 2s}\ncontrol: {socket: ""}\n' >"$CFG"
  probe_start run -c "$CFG" --listen "web=tcp://127.0.0.1:$PORT" -- "$PROBE" from-cli
  assert_equal "$(rep argv1)" from-cli
  assert_equal "$(rep env.LISTEN_FDNAMES)" web
  assert_equal "$(rep fd.3)" "socket family=inet type=stream listening=1 addr=127.0.0.1:$PORT cloexec=0"
  baton_stop
  assert_equal "$BATON_STATUS" 0
}
