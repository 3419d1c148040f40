"""A program that replaces itself the way gone/daemon's ReplaceProcess does, for the MAINPID= tests (notify.bats,
upgrade.bats): on SIGUSR2 it forks a copy, which says READY=1 + MAINPID=<itself> and then (unless told to keep it)
SIGTERMs its parent. No sockets: only the notify protocol.

    replace-self.py DIR [keep-parent|reap-fast]

Every copy writes DIR/pid.G.N (G: its BATON_GENERATION; N = 1 for the first, 2 for its replacement...) with its pid, sends WATCHDOG=1 every
200 ms while DIR/no-ping does not exist, writes DIR/term.PID when it gets SIGTERM and then exits 0, and exits with
the number in DIR/exit.PID once that file appears. keep-parent: the parent stays alive (the copy is then not
baton's child). reap-fast: the parent also reaps the copy as soon as it ends."""
import os
import signal
import socket
import sys
import time

d = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else ""
copy = 1


def notify(msg):
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(msg.encode(), addr)


def write(name, text):
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))


def on_term(*_):
    write("term.%d" % os.getpid(), "1")
    os._exit(0)


def on_usr2(*_):
    global copy
    pid = os.fork()
    if pid:
        if mode == "reap-fast":
            signal.signal(signal.SIGCHLD, lambda *_: os.waitpid(-1, os.WNOHANG))
        return
    copy += 1
    start()
    notify("READY=1\nMAINPID=%d\nSTATUS=copy %d" % (os.getpid(), copy))
    if mode != "keep-parent":
        os.kill(os.getppid(), signal.SIGTERM)


def start():
    write("pid.%s.%d" % (os.environ["BATON_GENERATION"], copy), str(os.getpid()))


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR2, on_usr2)
start()
notify("READY=1\nSTATUS=copy 1")
while True:
    exit_file = os.path.join(d, "exit.%d" % os.getpid())
    if os.path.exists(exit_file):
        with open(exit_file) as f:
            os._exit(int(f.read()))
    if not os.path.exists(os.path.join(d, "no-ping")):
        notify("WATCHDOG=1")
    time.sleep(0.2)
