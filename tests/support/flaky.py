"""A flaky S3 endpoint for the fault suite: a threaded reverse proxy on 127.0.0.1 in front of
the moto server that answers a seeded share of requests with ``503 SlowDown`` (S3's throttling
reply) and drops a share of connections, counting what it injected.

A dropped connection is closed without an answer before the request reaches the server, or,
for a ``GET``, after the server answered and half the body was sent (a connection lost
mid-download). Requests that change state are never dropped after they were applied: a client
cannot tell that case from a lost request, and S3 gives no help either (a retried
``CompleteMultipartUpload`` fails), so it is a different fault from the one tested here."""

from __future__ import annotations

import contextlib
import http.client
import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b"<Message>Please reduce your request rate.</Message>"
            b"<RequestId>duet-flaky</RequestId></Error>")  # fmt: skip
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class Faults:
    """The seeded dice and the ledger of one proxy: ``slowdown`` and ``drop`` are the shares of
    requests answered 503 and of connections dropped."""

    def __init__(self, seed: int, slowdown: float, drop: float):
        self.rng = random.Random(seed)
        self.slowdown, self.drop = slowdown, drop
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "slowdown": 0, "dropped": 0, "dropped_mid_body": 0}

    def fate(self, method: str) -> str:
        with self.lock:
            self.counts["requests"] += 1
            roll = self.rng.random()
            if roll < self.slowdown:
                fate = "slowdown"
            elif roll < self.slowdown + self.drop:
                fate = (
                    "dropped_mid_body" if method == "GET" and self.rng.random() < 0.5 else "dropped"
                )
            else:
                return "forward"
            self.counts[fate] += 1
            return fate

    @property
    def injected(self) -> int:
        c = self.counts
        return c["slowdown"] + c["dropped"] + c["dropped_mid_body"]


def _handler(upstream: str, faults: Faults) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as S3 clients expect
        server_version = "flaky-s3"

        def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                raw = b""
                while True:  # forwarded as sent (aws-chunked signatures cover the framing)
                    line = self.rfile.readline()
                    raw += line
                    size = int(line.split(b";")[0], 16)
                    raw += self.rfile.read(size + 2) if size else b""
                    if size == 0:
                        while (trailer := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                            raw += trailer
                        return raw + b"\r\n"
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _relay(self) -> None:
            body = self._body()
            fate = faults.fate(self.command)
            if fate == "dropped":
                self.close_connection = True
                return  # closed without a byte of answer
            if fate == "slowdown":
                self.send_response(503, "Slow Down")
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOWDOWN)))
                self.end_headers()
                self.wfile.write(SLOWDOWN)
                return
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in HOP - {"transfer-encoding"}
            }
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                reply = conn.getresponse()
                payload = reply.read()
            finally:
                conn.close()
            self.send_response(reply.status, reply.reason)
            for key, value in reply.getheaders():
                if key.lower() not in HOP and key.lower() not in (
                    "content-length",
                    "server",
                    "date",
                ):
                    self.send_header(key, value)
            length = reply.getheader("Content-Length")
            self.send_header("Content-Length", length if self.command == "HEAD" and length
                             else str(len(payload)))  # fmt: skip
            self.end_headers()
            if self.command == "HEAD":
                return
            if fate == "dropped_mid_body" and len(payload) > 1:
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

    return Handler


@contextlib.contextmanager
def flaky_proxy(upstream: str, *, seed: int, slowdown: float = 0.2,
                drop: float = 0.05) -> Iterator[tuple[str, Faults]]:  # fmt: skip
    """``(endpoint, faults)``: a proxy on 127.0.0.1 in front of ``upstream`` (an
    ``http://host:port`` S3 endpoint) injecting faults with ``random.Random(seed)``."""
    faults = Faults(seed, slowdown, drop)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, faults))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()
