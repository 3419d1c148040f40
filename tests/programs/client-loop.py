"""The client loop of the integration tests: one connection at a time to 127.0.0.1:PORT, one request each, until
the file STOP exists. Prints one line per connection: "ok" (with the generation that answered, for the demo) or
"fail WHY".

    client-loop.py PORT STOP [demo|http|memcached] [PAUSE_SECONDS]

demo: GET / HTTP/1.1, an "HTTP/1.1 200" answer holding generation=N (baton-demo, the fault server); http: GET / over
HTTP/1.0, any 200 answer; memcached: "version", a VERSION line."""
import os
import re
import socket
import sys
import time

port, stop = int(sys.argv[1]), sys.argv[2]
proto = sys.argv[3] if len(sys.argv) > 3 else "demo"
pause = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
request = {
    "demo": b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    "http": b"GET / HTTP/1.0\r\n\r\n",
    "memcached": b"version\r\n",
}[proto]


def verdict(data):
    if proto == "demo":
        m = re.search(rb"generation=(\d+)", data)
        return "ok " + m.group(1).decode() if data.startswith(b"HTTP/1.1 200 ") and m else None
    if proto == "http":
        return "ok" if b" 200 " in data.split(b"\r\n", 1)[0] else None
    return "ok" if data.startswith(b"VERSION ") else None


# How long one request may take. A request waits in the listening socket's backlog while generations hand over (a
# gunicorn arbiter says READY=1 before its workers are forked, and the old workers stop at once): on a loaded machine
# that wait can take seconds. It is slowness, not a failure: a refused or reset connection fails at once.
TIMEOUT = 20

while not os.path.exists(stop):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(request)
            data = b""
            # memcached keeps the connection open: its answer is one line.
            while not (proto == "memcached" and data.endswith(b"\r\n")):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        print(verdict(data) or "fail bad answer " + repr(data[:80]), flush=True)
    except Exception as e:
        print("fail", type(e).__name__, e, flush=True)
    if pause:
        time.sleep(pause)
