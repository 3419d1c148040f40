#!/usr/bin/env python3
"""Stands in for systemd's notify socket in tests: binds a unix datagram socket at PATH and appends every datagram it
receives to OUT, one datagram per line with newlines shown as '|' (so "READY=1\nSTATUS=x" is "READY=1|STATUS=x").
Received fds are closed at once. It runs until killed. Usage: notify-recv.py PATH OUT [HOLD]

With HOLD, it stands in for a systemd that does not read: it fills its own queue with FILLER=n datagrams (sent
without waiting, until the kernel refuses one) and reads nothing until the file HOLD exists."""
import array
import os
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
sock.bind(path)
hold = sys.argv[3] if len(sys.argv) > 3 else None
if hold:
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    n = 0
    try:
        while True:
            filler.sendto(b"FILLER=%d" % n, path)
            n += 1
    except BlockingIOError:
        pass
    filler.close()
# Tell the test we are listening: it waits for this file.
with open(out + ".ready", "w") as f:
    f.write(str(os.getpid()))
while hold and not os.path.exists(hold):
    time.sleep(0.01)
while True:
    data, ancdata, _flags, _addr = sock.recvmsg(65536, socket.CMSG_SPACE(253 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
    with open(out, "a") as f:
        f.write(data.decode("utf-8", "replace").replace("\n", "|") + "\n")
