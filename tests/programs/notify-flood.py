#!/usr/bin/env python3
"""Floods $NOTIFY_SOCKET with datagrams as fast as the socket takes them (blocking sends: a full queue makes it wait,
it never drops one), COUNT of them at least, and on until the file OUT.stop exists (60 s at most), so that a test can
do what it must while the flood is still going on. Mostly valid messages (STATUS=flood N, WATCHDOG=1, READY=1 again)
and junk that baton must take in its stride (unknown keys, lines without '=', values that do not parse, invalid UTF-8,
a 3000-byte STATUS=), with now and then one that baton drops with a warning (empty, a NUL byte, over 4096 bytes,
FDSTORE=1 without fds).
It creates OUT.started after the first 1000, OUT.counted after COUNT, and OUT.done (holding "sent N") at the end,
also when SIGTERM ends it (as it ends what is left of a generation).
Usage: notify-flood.py COUNT OUT"""
import os
import signal
import socket
import sys
import time

count, out = int(sys.argv[1]), sys.argv[2]
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]

junk = [
    b"X_FLOOD_UNKNOWN_KEY=1",
    b"no equals sign on this line",
    b"READY=1",
    b"WATCHDOG=1",
    b"STATUS=\xc3\x28 invalid utf-8",
    b"STATUS=" + b"x" * 3000,
    b"READY=2\nERRNO=not-a-number\nEXTEND_TIMEOUT_USEC=-1\nMAINPID=0",
    b"\xff\xfe\xfd binary junk \x01\x02",
]
dropped = [b"", b"STATUS=nul\0byte", b"y" * 5000, b"FDSTORE=1\nFDNAME=flood"]

def more(i, deadline=time.monotonic() + 60):
    if i < count:
        return True
    # Checked every 100 datagrams: a stat() per datagram would slow the flood down.
    return i % 100 != 0 or not (os.path.exists(out + ".stop") or time.monotonic() > deadline)


sent = 0


def done(*_):
    with open(out + ".tmp", "w") as f:
        f.write("sent %d\n" % sent)
    os.rename(out + ".tmp", out + ".done")
    os._exit(0)


signal.signal(signal.SIGTERM, done)
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.connect(addr)
    i = 0
    while more(i):
        if i % 1000 < len(dropped):
            msg = dropped[i % 1000]
        elif i % 2:
            msg = junk[(i // 2) % len(junk)]
        else:
            msg = b"STATUS=flood %d" % i
        s.send(msg)
        sent += 1
        if sent == 1000:
            open(out + ".started", "w").close()
        if sent == count:
            open(out + ".counted", "w").close()
        i += 1
done()
