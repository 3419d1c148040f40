#!/usr/bin/env python3
"""Stands in for baton when testing the preload shim on its own (tests/bats/preload.bats): binds the listeners, starts
COMMAND with them at fds 3, 4, ... and the variables baton would set (NOTIFY_SOCKET an abstract socket, as baton's),
LD_PRELOAD=$BATON_PRELOAD_LIBRARY in front of any existing LD_PRELOAD, and records what arrives on its notify socket.

Usage: preload-harness.py OUTDIR [OPTION]... -- COMMAND [ARG]...
  --listen SPEC        tcp4:HOST:PORT, tcp6:[HOST]:PORT, udp4:HOST:PORT, unix:PATH or unix:@NAME (repeatable); stream
                       sockets listen with backlog 77, so that a test can see whether anyone changed it
  --instances N        start N copies of COMMAND on the same sockets (BATON_GENERATION=1..N); default 1
  --drain-signal N     BATON_DRAIN_SIGNAL=N
  --no-listen-fds      no LISTEN_* variables (and no --listen)
  --fd3-file           a regular file at fd 3 with LISTEN_FDS=1: not a socket, the shim must leave it alone

LISTEN_PID is the harness's own pid, never COMMAND's: the shim must not require it to match (it serves wrapper
scripts and their children alike).

Writes in OUTDIR: "sockets" ("INDEX INODE" per listener: the inode /proc/PID/fd shows as socket:[INODE]), "pids"
("INSTANCE PID"), "notify" (one line per datagram: "PID TEXT", PID from SCM_CREDENTIALS, newlines in TEXT as '|';
and "exit INSTANCE STATUS" when an instance ends), then "started" once all of it is in place. It exits once every
instance has ended; killed, it takes them along (PR_SET_PDEATHSIG)."""
import ctypes
import fcntl
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys

PR_SET_PDEATHSIG = 1
BACKLOG = 77


def usage(why):
    sys.exit("preload-harness: " + why)


def parse_args(argv):
    if len(argv) < 2 or "--" not in argv:
        usage("usage: preload-harness.py OUTDIR [OPTION]... -- COMMAND [ARG]...")
    out, opts = argv[1], argv[2 : argv.index("--")]
    command = argv[argv.index("--") + 1 :]
    args = {"listen": [], "instances": 1, "drain": None, "no_listen_fds": False, "fd3_file": False}
    i = 0
    while i < len(opts):
        o = opts[i]
        if o in ("--listen", "--instances", "--drain-signal") and i + 1 < len(opts):
            v = opts[i + 1]
            if o == "--listen":
                args["listen"].append(v)
            elif o == "--instances":
                args["instances"] = int(v)
            else:
                args["drain"] = v
            i += 2
            continue
        if o == "--no-listen-fds":
            args["no_listen_fds"] = True
        elif o == "--fd3-file":
            args["fd3_file"] = True
        else:
            usage("unknown option " + o)
        i += 1
    if not command:
        usage("no COMMAND")
    return out, args, command


def bind_spec(spec):
    kind, _, rest = spec.partition(":")
    if kind == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("\0" + rest[1:] if rest.startswith("@") else rest)
        s.listen(BACKLOG)
        return s
    host, _, port = rest.rpartition(":")
    if kind == "tcp6":
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        host = host.strip("[]")
    elif kind in ("tcp4", "udp4"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp4" else socket.SOCK_STREAM)
    else:
        usage("unknown listener kind " + kind)
    if s.type == socket.SOCK_STREAM:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    if s.type == socket.SOCK_STREAM:
        s.listen(BACKLOG)
    return s


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main():
    out, args, command = parse_args(sys.argv)
    inherited = [bind_spec(spec) for spec in args["listen"]]
    files = []
    if args["fd3_file"]:
        files.append(open(os.path.join(out, "not-a-socket"), "w+"))
    passed = [s.fileno() for s in inherited] + [f.fileno() for f in files]

    # Abstract, as baton's: no file permissions, so workers that drop privileges (nginx's) can still send.
    notify_name = "@baton-preload-harness/%d/%s" % (os.getpid(), os.urandom(8).hex())
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    notify.bind("\0" + notify_name[1:])
    log = open(os.path.join(out, "notify"), "a", buffering=1)

    env = dict(os.environ)
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "BATON_DRAIN_SIGNAL"):
        env.pop(name, None)
    if passed and not args["no_listen_fds"]:
        env["LISTEN_FDS"] = str(len(passed))
        env["LISTEN_PID"] = str(os.getpid())
        env["LISTEN_FDNAMES"] = ":".join("l%d" % i for i in range(len(passed)))
    env["NOTIFY_SOCKET"] = notify_name
    if args["drain"]:
        env["BATON_DRAIN_SIGNAL"] = args["drain"]
    preload = os.environ["BATON_PRELOAD_LIBRARY"]
    env["LD_PRELOAD"] = preload + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
    # An ASan-built COMMAND (the sanitize build's probe) refuses to run unless its runtime is the first library;
    # the shim is in front of it here, as it would be in production.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))

    libc = ctypes.CDLL(None, use_errno=True)

    def child_setup():
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        # Out of the way first (above anything open), then down to 3, 4, ... without close-on-exec.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in passed]
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i, inheritable=True)

    children = []
    for n in range(1, args["instances"] + 1):
        env["BATON_GENERATION"] = str(n)
        children.append(subprocess.Popen(command, env=env, close_fds=False, preexec_fn=child_setup))

    write_atomic(
        os.path.join(out, "sockets"),
        "".join("%d %d\n" % (i, os.fstat(fd).st_ino) for i, fd in enumerate(passed)),
    )
    write_atomic(os.path.join(out, "pids"), "".join("%d %d\n" % (n + 1, c.pid) for n, c in enumerate(children)))
    write_atomic(os.path.join(out, "started"), "")

    sel = selectors.DefaultSelector()
    sel.register(notify, selectors.EVENT_READ, None)
    for n, c in enumerate(children):
        sel.register(os.pidfd_open(c.pid), selectors.EVENT_READ, (n + 1, c))
    running = len(children)
    while running:
        for key, _ in sel.select():
            if key.data is None:
                data, anc, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(12))
                pid = 0
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack("iII", payload[:12])[0]
                log.write("%d %s\n" % (pid, data.decode("utf-8", "replace").replace("\n", "|")))
            else:
                n, c = key.data
                sel.unregister(key.fileobj)
                os.close(key.fd)
                log.write("exit %d %d\n" % (n, c.wait()))
                running -= 1


if __name__ == "__main__":
    main()
