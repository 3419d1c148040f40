#!/usr/bin/env python3
"""The child of the fault-injection tests (tests/bats/faults.bats): a tiny HTTP server on its first listener (fd 3,
from LISTEN_FDS) that sends READY=1 and then does what a request tells it, so a test can make it fail on cue.

Every answer is one line, "hello from fault-server pid=P generation=G nonblock=N\\n" (the demo's format, so the
helpers' answer_pid and answer_generation read it; N is 1 when fd 3 was already O_NONBLOCK when this process
started). The path says what to do once the answer is out:

  /            nothing more
  /exit/N      exit with status N
  /close       close the listening socket and keep running: this process serves nothing any more
  /shutdown    shutdown(2) the listening socket (SHUT_RDWR, as servers do to wake their accepting threads) and keep
               running: this acts on the socket itself, which baton and every generation share
  /nonblock    set O_NONBLOCK on the listening socket (a flag of the open file, which baton and every generation share)
  /flood/N     start notify-flood.py (a process of this generation) sending N datagrams to NOTIFY_SOCKET; it writes
               $FAULT_FLOOD_OUT.started and .done

FAULT_READY_DELAY_MS delays READY=1. Signals keep their default dispositions (SIGTERM kills it), and it never dumps
core (RLIMIT_CORE 0), so that a test can kill it with SIGSEGV or SIGBUS."""
import fcntl
import os
import resource
import select
import socket
import sys
import time

resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
    sys.exit("fault-server: no listening socket at fd 3 (run me under baton)")
nonblock_at_start = 1 if fcntl.fcntl(3, fcntl.F_GETFL) & os.O_NONBLOCK else 0
lsock = socket.socket(fileno=3)


def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), addr)


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 8192:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    parts = data.split(b" ", 2)
    return parts[1].decode("ascii", "replace") if len(parts) > 1 else "/"


def answer(conn):
    body = "hello from fault-server pid=%d generation=%s nonblock=%d\n" % (
        os.getpid(),
        os.environ.get("BATON_GENERATION", "?"),
        nonblock_at_start,
    )
    conn.sendall(
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(body), body)
        ).encode()
    )


delay = int(os.environ.get("FAULT_READY_DELAY_MS", "0"))
if delay:
    time.sleep(delay / 1000)
notify("READY=1")

while True:
    # select first: another generation may take the connection, and the socket may be blocking or not.
    select.select([lsock], [], [])
    try:
        conn, _ = lsock.accept()
    except (BlockingIOError, InterruptedError):
        continue
    with conn:
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            path = read_request(conn)
            answer(conn)
        except OSError:
            continue
    if path.startswith("/exit/"):
        os._exit(int(path[len("/exit/"):]))
    elif path == "/close":
        lsock.close()
        while True:
            time.sleep(3600)
    elif path == "/shutdown":
        lsock.shutdown(socket.SHUT_RDWR)
        while True:
            time.sleep(3600)
    elif path == "/nonblock":
        fcntl.fcntl(3, fcntl.F_SETFL, fcntl.fcntl(3, fcntl.F_GETFL) | os.O_NONBLOCK)
    elif path.startswith("/flood/"):
        import subprocess  # here: it costs a tenth of a second at every start

        here = os.path.dirname(os.path.abspath(__file__))
        subprocess.Popen(
            [sys.executable, os.path.join(here, "notify-flood.py"), path[len("/flood/"):],
             os.environ["FAULT_FLOOD_OUT"]]
        )
