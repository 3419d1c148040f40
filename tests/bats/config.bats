#!/usr/bin/env bats
# Invalid configurations (baton.yaml(5) PARSING RULES; baton(1) EXIT STATUS): each one makes `baton run -c` exit 101
# with an error that names the file, the key and the line, and starts no child; `baton check` prints the same error
# and exits 101. The program of every file here is the probe with PROBE_OUT: had it been started, the report would exist.

bats_require_minimum_version 1.5.0
load 'helpers'

setup() {
  probe_setup
  # Should a broken baton start the probe anyway, it exits at once instead of keeping baton running.
  export PROBE_EXIT=0
}

teardown() { teardown_processes; }

# The config file from stdin.
write_cfg() { cat >"$CFG"; }

# The probe as program, for the files below.
PROGRAM='program:
  command: ["'"$PROBE"'"]'

# expect_config_error KEY LINE WHY: `baton run -c $CFG` and `baton check -c $CFG` both exit 101 with
# "$CFG: key 'KEY': WHY... (line LINE)" and no child ran. KEY "" is a file-level error (no key); LINE "" when the
# message gives none.
expect_config_error() {
  local key=$1 line=$2 why=$3 run_msg
  run --separate-stderr timeout 10 "$BATON" run -c "$CFG"
  echo "run: status $status, stderr: $stderr"
  assert_equal "$status" 101
  assert_no_child
  stderr_has "$CFG: "
  [[ -z "$key" ]] || stderr_has "$CFG: key '$key': "
  [[ -z "$line" ]] || stderr_has "(line $line)"
  stderr_has "$why"
  run_msg=${stderr#baton: error: }

  run --separate-stderr timeout 10 "$BATON" check -c "$CFG"
  echo "check: status $status, stdout: $output, stderr: $stderr"
  assert_equal "$status" 101
  assert_equal "$output" ""
  assert_equal "${stderr#baton: }" "$run_msg"
  assert_no_child
}

@test "an empty file is an error" {
  : >"$CFG"
  expect_config_error "" "" "empty config"
}

@test "a YAML syntax error is an error with its line" {
  write_cfg <<EOF
listeners: [
  {name: web, address: "tcp://127.0.0.1:$PORT"
$PROGRAM
EOF
  expect_config_error "" 3 "YAML syntax error"
}

@test "an unknown top-level key is an error" {
  write_cfg <<EOF
$PROGRAM
bogus: 1
EOF
  expect_config_error bogus 3 "unknown key"
}

@test "an unknown listener key is an error" {
  write_cfg <<EOF
listeners:
  - name: web
    address: tcp://127.0.0.1:$PORT
    colour: red
$PROGRAM
EOF
  expect_config_error "listeners[0].colour" 4 "unknown key"
}

@test "a value of the wrong type is an error (listeners: 5)" {
  write_cfg <<EOF
listeners: 5
$PROGRAM
EOF
  expect_config_error listeners 1 "expected a list"
}

@test "a duplicate key is an error" {
  write_cfg <<EOF
$PROGRAM
stop:
  timeout: 1s
  timeout: 2s
EOF
  expect_config_error "stop.timeout" 5 "duplicate key"
}

@test "a duplicate listener name is an error" {
  write_cfg <<EOF
listeners:
  - {name: web, address: "tcp://127.0.0.1:$PORT"}
  - {name: web, address: "tcp://127.0.0.1:$((PORT + 1))"}
$PROGRAM
EOF
  expect_config_error "listeners[1].name" 3 "duplicate listener name"
}

@test "a duplicate address is an error, even when written differently" {
  write_cfg <<EOF
listeners:
  - {name: web, address: "tcp://127.0.0.1:$PORT"}
  - {name: web2, address: "tcp4://127.0.0.1:$PORT"}
$PROGRAM
EOF
  expect_config_error "listeners[1].address" 3 "duplicate address"
}

@test "a listener name with ':' is an error" {
  write_cfg <<EOF
listeners:
  - {name: "a:b", address: "tcp://127.0.0.1:$PORT"}
$PROGRAM
EOF
  expect_config_error "listeners[0].name" 2 "invalid name"
  stderr_has "'a:b'"
}

@test "a listener name of 256 characters is an error (255 is fine)" {
  local n255 n256
  n255=$(printf 'n%.0s' {1..255})
  n256="${n255}x"
  write_cfg <<EOF
listeners:
  - name: $n255
    address: tcp://127.0.0.1:$PORT
$PROGRAM
EOF
  run --separate-stderr "$BATON" check -c "$CFG"
  assert_success

  write_cfg <<EOF
listeners:
  - name: $n256
    address: tcp://127.0.0.1:$PORT
$PROGRAM
EOF
  expect_config_error "listeners[0].name" 2 "invalid name"
}

@test "an address with an unknown scheme (htp://) is an error" {
  write_cfg <<EOF
listeners:
  - name: web
    address: htp://127.0.0.1:$PORT
$PROGRAM
EOF
  expect_config_error "listeners[0].address" 3 "'htp://127.0.0.1:$PORT'"
}

@test "port 0 is an error" {
  write_cfg <<EOF
listeners:
  - name: web
    address: tcp://127.0.0.1:0
$PROGRAM
EOF
  expect_config_error "listeners[0].address" 3 "port out of range 1-65535: 'tcp://127.0.0.1:0'"
}

@test "port 70000 is an error" {
  write_cfg <<EOF
listeners:
  - name: web
    address: tcp://127.0.0.1:70000
$PROGRAM
EOF
  expect_config_error "listeners[0].address" 3 "port out of range 1-65535: 'tcp://127.0.0.1:70000'"
}

@test "numbers are strict: 80abc, 010 and 0x50 are errors" {
  local bad
  for bad in 80abc 010 0x50; do
    write_cfg <<EOF
listeners:
  - name: web
    address: tcp://127.0.0.1:$PORT
    backlog: $bad
$PROGRAM
EOF
    expect_config_error "listeners[0].backlog" 4 "'$bad'"
  done
}

@test "booleans are strict: flase is an error" {
  write_cfg <<EOF
listeners:
  - name: web
    address: tcp://127.0.0.1:$PORT
    nodelay: flase
$PROGRAM
EOF
  expect_config_error "listeners[0].nodelay" 4 "expected true or false: 'flase'"
}

@test "a duration without its unit (timeout: 30) is an error" {
  write_cfg <<EOF
$PROGRAM
readiness:
  timeout: 30
EOF
  expect_config_error "readiness.timeout" 4 "'30'"
}

@test "an empty command is an error" {
  write_cfg <<EOF
listeners:
  - {name: web, address: "tcp://127.0.0.1:$PORT"}
program:
  command: []
EOF
  expect_config_error "program.command" 4 "empty command"
}

@test "a {fd:NAME} naming no listener is an error" {
  write_cfg <<EOF
listeners:
  - {name: web, address: "tcp://127.0.0.1:$PORT"}
program:
  command: ["$PROBE", "--fd", "{fd:nope}"]
EOF
  # baton(1): "A placeholder naming no listener is a configuration error"; every config error names the file.
  expect_config_error "program.command[2]" "" "{fd:nope}"
}

@test "nodelay on a unix socket is an error" {
  write_cfg <<EOF
listeners:
  - name: local
    address: unix:$BATS_TEST_TMPDIR/s.sock
    nodelay: true
$PROGRAM
EOF
  expect_config_error "listeners[0].nodelay" 4 "only for tcp"
}

@test "mode on a tcp listener is an error" {
  write_cfg <<EOF
listeners:
  - name: web
    address: tcp://127.0.0.1:$PORT
    mode: "0660"
$PROGRAM
EOF
  expect_config_error "listeners[0].mode" 4 "only for unix socket paths"
}
