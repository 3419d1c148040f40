"""pysd-server: an HTTP service written against python3-systemd (Debian's python3-systemd), as a program for systemd
would be, run unchanged under baton by tests/bats/clients.bats: its listener taken by name
(systemd.daemon.listen_fds_with_names), READY=1 through systemd.daemon.notify, a graceful stop on SIGTERM. It answers
every request with "hello from pysd-server pid=P generation=G".

    pysd-server.py NAME   serve on the listener named NAME (exit 2 when there is none by that name)"""
import http.server
import os
import signal
import socket
import sys
import threading

from systemd import daemon

name = sys.argv[1]
fds = {n: fd for fd, n in daemon.listen_fds_with_names().items()}
if name not in fds:
    sys.exit("pysd-server: no listener named %r (%r)" % (name, fds))
generation = os.environ.get("BATON_GENERATION")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("hello from pysd-server pid=%d generation=%s\n" % (os.getpid(), generation)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the requests it accepted
    block_on_close = True


server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=fds[name])
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
if not daemon.notify("READY=1"):
    sys.exit("pysd-server: notify failed (NOTIFY_SOCKET=%r)" % os.environ.get("NOTIFY_SOCKET"))
server.serve_forever(poll_interval=0.1)
server.server_close()
