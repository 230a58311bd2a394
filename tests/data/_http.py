"""A real HTTP server on 127.0.0.1 for the fetch tests.

Each served path has a :class:`Resource`: its bytes, how many times it answers
500 before succeeding, whether the first answer drops the connection half-way
through the body, and whether Range requests are honoured. Every request is
recorded (path and Range header) so tests can assert what the client sent.
The server runs in a daemon thread that :func:`serve` always shuts down and joins.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Resource:
    body: bytes
    fail_first: int = 0  # answer 500 this many times first
    drop_after: int | None = None  # first 200/206 answer closes after this many body bytes
    ranges: bool = True  # honour "Range: bytes=N-"
    served: int = 0


@dataclass
class Server:
    base_url: str
    resources: dict[str, Resource]
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # a stuck client cannot keep a handler thread alive

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

        def do_GET(self) -> None:
            server.requests.append((self.path, self.headers.get("Range")))
            res = server.resources.get(self.path)
            if res is None:
                self.send_error(404)
                return
            if res.fail_first > 0:
                res.fail_first -= 1
                self.send_error(500, "planned failure")
                return
            start = 0
            range_header = self.headers.get("Range")
            if res.ranges and range_header and range_header.startswith("bytes="):
                start = int(range_header[len("bytes=") :].split("-")[0])
                if start >= len(res.body):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(res.body) - 1}/{len(res.body)}"
                )
            else:
                self.send_response(200)
            payload = res.body[start:]
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Accept-Ranges", "bytes" if res.ranges else "none")
            self.end_headers()
            res.served += 1
            if res.drop_after is not None and res.served == 1:
                self.wfile.write(payload[: res.drop_after])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

    return Handler


@contextlib.contextmanager
def serve(resources: dict[str, Resource]) -> Iterator[Server]:
    """Serve ``resources`` on an ephemeral port of 127.0.0.1 for the duration of the block."""
    state = Server(base_url="", resources=resources)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
