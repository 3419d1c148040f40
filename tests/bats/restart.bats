#!/usr/bin/env bats
# Restarts (baton(1) RESTARTS; baton.yaml(5) RESTART): a crashed child is restarted with exponential backoff while the
# sockets stay open (a client that connects during the gap is answered by the next generation), restart.policy
# decides whether to restart and otherwise baton exits with the program's status, and a first start that fails is
# not retried.

load 'helpers'

setup() { demo_setup; }
teardown() { teardown_processes; }

# The "restarting in X" delays baton logged, in order, space-separated.
restart_delays() { sed -n 's/.*; restarting in \([0-9a-z]*\) (failure.*/\1/p' "$BATON_LOG" | tr '\n' ' '; }
delays_logged() { [[ "$(restart_delays)" == "$1"* ]]; }

@test "a child killed with SIGKILL is restarted: generation 2 answers, same baton pid, restarts 1" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")
  assert_equal "$(status_get 'd["restarts"]')" 0

  kill -KILL "$pid1"
  wait_for generation_answers "$PORT" 2
  wait_log "generation 1 \(pid $pid1\) was killed by SIGKILL; restarting in 100ms \(failure 1 in a row\)"
  assert_equal "$(status_get 'd["restarts"]')" 1
  assert_equal "$(status_get 'd["pid"]')" "$BATON_PID"
  assert_equal "$(status_get 'd["state"]')" running
  kill -0 "$BATON_PID"
  [[ "$(answer_pid "$PORT")" != "$pid1" ]]
}

@test "a client that connects during the restart delay is answered by the next generation" {
  CFG_EXTRA="restart: {delay: 2s}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")

  kill -KILL "$pid1"
  wait_log "restarting in 2s"
  # Nothing serves for 2s; the socket stays open in baton, so the connection waits in the backlog.
  bg_run c curl -fsS --max-time 10 "http://127.0.0.1:$PORT/"
  wait_for client_connected "$PORT"
  run log_has "generation 2 started"
  assert_failure

  wait_for bg_done c
  assert_equal "$(bg_rc c)" 0
  run bg_out c
  assert_output --partial "generation=2"
  assert_equal "$(status_get 'd["pid"]')" "$BATON_PID"
}

@test "the restart delay doubles from restart.delay up to restart.max-delay" {
  CFG_EXTRA="restart: {delay: 200ms, max-delay: 800ms}" demo_config --exit-after-ready 1
  baton_start run -c "$CFG"

  wait_log "restarting in 200ms \(failure 1 in a row\)"
  wait_log "restarting in 400ms \(failure 2 in a row\)"
  wait_log "restarting in 800ms \(failure 3 in a row\)"
  wait_log "restarting in 800ms \(failure 4 in a row\)"
  run restart_delays
  assert_output --regexp '^200ms 400ms 800ms 800ms '
  # It crashed after it was ready each time: a crash loop, not a failed first start.
  log_has "generation 1 \(pid [0-9]+\) exited with status 1; restarting"
  kill -0 "$BATON_PID"
}

@test "the backoff starts over after a generation stayed ready for restart.max-delay" {
  CFG_EXTRA="restart: {delay: 100ms, max-delay: 1s}" demo_config
  start_baton

  kill -KILL "$(answer_pid "$PORT")"
  wait_for generation_answers "$PORT" 2
  kill -KILL "$(answer_pid "$PORT")"
  wait_for generation_answers "$PORT" 3
  wait_log "restarting in 200ms \(failure 2 in a row\)"
  # Generation 3 serves for longer than max-delay: the failures count starts over.
  wait_for current_up_for 1200
  kill -KILL "$(answer_pid "$PORT")"
  wait_for generation_answers "$PORT" 4
  wait_log "generation 3 \(pid [0-9]+\) was killed by SIGKILL; restarting in 100ms \(failure 1 in a row\)"
}

# The current generation has been up for at least MS milliseconds.
current_up_for() { (($(status_get '[g["uptime_ms"] for g in d["generations"] if g["role"] == "current"][0]') >= $1)); }

@test "restart.policy never: baton exits with the child's status" {
  CFG_EXTRA="restart: {policy: never}" demo_config --exit-after-ready 7
  baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 7
  run log_has "generation 2 started"
  assert_failure
}

@test "restart.policy never: a child killed by SIGKILL makes baton exit 137" {
  CFG_EXTRA="restart: {policy: never}" demo_config
  start_baton
  kill -KILL "$(answer_pid "$PORT")"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 137
  run log_has "generation 2 started"
  assert_failure
}

@test "restart.policy on-failure: a clean exit 0 is not restarted and baton exits 0" {
  CFG_EXTRA="restart: {policy: on-failure}" demo_config
  start_baton
  # SIGTERM from outside baton: the demo exits 0 on its own.
  kill -TERM "$(answer_pid "$PORT")"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 0
  log_has "exited with status 0; restart.policy is on-failure, exiting"
  run log_has "generation 2 started"
  assert_failure
}

@test "restart.policy on-failure: a non-zero exit is restarted" {
  demo_config
  start_baton
  pid1=$(answer_pid "$PORT")
  # The demo exits 0 on SIGTERM and SIGINT; SIGUSR1 (not handled) kills it: a failure.
  kill -USR1 "$pid1"
  wait_for generation_answers "$PORT" 2
  log_has "generation 1 \(pid $pid1\) was killed by SIGUSR1; restarting"
}

@test "restart.policy always: a clean exit 0 is restarted too" {
  CFG_EXTRA="restart: {policy: always}" demo_config
  start_baton
  pid1=$(answer_pid "$PORT")
  kill -TERM "$pid1"
  wait_for generation_answers "$PORT" 2
  log_has "generation 1 \(pid $pid1\) exited with status 0; restarting in 100ms"
  assert_equal "$(status_get 'd["restarts"]')" 1
  assert_equal "$(status_get 'd["pid"]')" "$BATON_PID"
}

@test "a first generation that fails before it was ever ready makes baton exit with its status, no restart" {
  demo_config --fail-start 4
  baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 4
  log_has "generation 1 \(pid [0-9]+\) exited with status 4 before it was ready"
  run log_has "restarting"
  assert_failure
  run log_has "generation 2 started"
  assert_failure
}

@test "a first generation that is not ready within readiness.timeout is killed and baton exits 102, no restart" {
  CFG_READINESS="{timeout: 300ms}" demo_config --no-notify
  baton_start run -c "$CFG"
  baton_wait_exit
  assert_equal "$BATON_STATUS" 102
  log_has "generation 1 \(pid [0-9]+\) was not ready within 300ms"
  run log_has "generation 2 started"
  assert_failure
}
