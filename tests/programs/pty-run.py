"""Runs a command on a new pseudo-terminal, as its controlling terminal and in its foreground (like a terminal
emulator starts a shell), and talks to it by a script read from stdin, one step per line:

    send TEXT        writes TEXT to the terminal (Python escapes: \\x03 is Ctrl-C, \\x1a Ctrl-Z, \\r Enter)
    expect REGEX     waits until the output so far (since the last expect) matches REGEX
    wait             waits for the command to exit and prints "exit N" (or "signal N")

Every step has a deadline (--timeout seconds, default 20); a step that times out prints what the terminal showed
and exits 1. The whole output goes to --log if given. Usage: pty-run.py [--timeout S] [--log FILE] -- CMD [ARG]...
"""
import codecs
import os
import pty
import re
import select
import sys
import time


def main():
    args = sys.argv[1:]
    timeout, log = 20.0, None
    while args and args[0] != "--":
        if args[0] == "--timeout":
            timeout = float(args[1])
            args = args[2:]
        elif args[0] == "--log":
            log = open(args[1], "ab", buffering=0)
            args = args[2:]
        else:
            sys.exit("pty-run.py: unknown option " + args[0])
    cmd = args[1:]
    script = [line.rstrip("\n") for line in sys.stdin if line.strip()]

    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)

    seen = b""  # output since the last successful expect
    everything = b""

    def read_some(deadline):
        nonlocal seen, everything
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return False
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the other side is closed
            data = b""
        if not data:
            return None
        seen += data
        everything += data
        if log:
            log.write(data)
        return True

    status = None
    for step in script:
        verb, _, arg = step.partition(" ")
        deadline = time.monotonic() + timeout
        if verb == "send":
            os.write(fd, codecs.decode(arg, "unicode_escape").encode("latin-1"))
        elif verb == "expect":
            rx = re.compile(arg.encode())
            while not rx.search(seen):
                got = read_some(deadline)
                if not got:
                    print("pty-run.py: no %r within %gs; the terminal showed: %r" % (arg, timeout, everything))
                    sys.exit(1)
            seen = seen[rx.search(seen).end():]
        elif verb == "wait":
            while True:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                    break
                if time.monotonic() > deadline:
                    print("pty-run.py: the command did not exit within %gs; the terminal showed: %r"
                          % (timeout, everything))
                    sys.exit(1)
                read_some(min(deadline, time.monotonic() + 0.05))
            if os.WIFEXITED(status):
                print("exit %d" % os.WEXITSTATUS(status))
            else:
                print("signal %d" % os.WTERMSIG(status))
        else:
            sys.exit("pty-run.py: unknown step " + step)
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


main()
