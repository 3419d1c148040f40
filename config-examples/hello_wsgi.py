"""The WSGI app of gunicorn.yaml: answers every request with its pid and baton's generation number."""
import os


def app(environ, start_response):
    body = "hello from gunicorn pid=%d generation=%s\n" % (os.getpid(), os.environ.get("BATON_GENERATION", "?"))
    body = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
