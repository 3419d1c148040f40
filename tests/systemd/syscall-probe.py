"""The system calls and sockets that baton and the tests need, tried where the tests' units run: ct_preflight
(helpers.bash) runs it inside the container as a transient service, so it is under every filter a unit there is
under (a seccomp filter of systemd-nspawn, or of an outer container the tests run in). One line per check:
"ok NAME", "refused NAME: WHY" (exit status 1), or "note: refused NAME: WHY" for a call baton does not need.

pidfd_getfd is such a note: systemd-nspawn's filter (nspawn-seccomp.c, 252 and 257 alike) allows no call of the
@debug set, pidfd_getfd included, so it is refused with EPERM in every nspawn container, and @system-service
filters (SystemCallFilter= of baton-hardened.service) refuse it too. Code that comes to need it must have a
fallback, and then this line tells which path the tests exercised."""
import ctypes
import errno
import os
import select
import socket

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
# The numbers of the system calls added since Linux 5.1 are the same on every architecture.
SYS_pidfd_send_signal, SYS_pidfd_open, SYS_close_range, SYS_pidfd_getfd = 424, 434, 436, 438
PR_SET_CHILD_SUBREAPER = 36
refused = []


def check(name, fn, needed=True):
    try:
        fn()
        print("ok", name, flush=True)
    except OSError as e:
        why = f"refused {name}: {errno.errorcode.get(e.errno, e.errno)} ({e.strerror})"
        if needed:
            refused.append(name)
        print(why if needed else "note: " + why, flush=True)


def sys(nr, *args):
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def pidfd():
    return sys(SYS_pidfd_open, os.getpid(), 0)


def pidfd_send_signal():
    fd = pidfd()
    try:
        sys(SYS_pidfd_send_signal, fd, 0, 0, 0)
    finally:
        os.close(fd)


def pidfd_getfd():
    fd = pidfd()
    try:
        os.close(sys(SYS_pidfd_getfd, fd, 0, 0))
    finally:
        os.close(fd)


def close_range():
    # A range with nothing open in it: only whether the call is allowed matters.
    sys(SYS_close_range, 1 << 20, (1 << 20) + 1, 0)


def subreaper():
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def signalfd():
    # baton reads its signals from a signalfd (an empty mask is enough to know whether the call is allowed).
    mask = (ctypes.c_ulong * 16)()
    fd = libc.signalfd(-1, ctypes.byref(mask), os.O_CLOEXEC)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    os.close(fd)


def timerfd():
    fd = libc.timerfd_create(1, os.O_CLOEXEC)  # CLOCK_MONOTONIC
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    os.close(fd)


def loopback():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        with socket.create_connection(srv.getsockname(), timeout=2):
            srv.accept()[0].close()


def notify_socket():
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        s.bind("\0baton-syscall-probe-%d" % os.getpid())


check("pidfd_open", lambda: os.close(pidfd()))
check("pidfd_send_signal", pidfd_send_signal)
check("pidfd_getfd", pidfd_getfd, needed=False)
check("close_range", close_range)
check("prctl(PR_SET_CHILD_SUBREAPER)", subreaper)
check("signalfd", signalfd)
check("timerfd_create", timerfd)
check("epoll_create1", lambda: select.epoll().close())
check("AF_UNIX datagram socket with SO_PASSCRED", notify_socket)
check("TCP connection on 127.0.0.1", loopback)
raise SystemExit(1 if refused else 0)
