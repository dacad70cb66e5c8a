"""A local OTLP/HTTP endpoint that accepts and drops spans, so tracing costs what it costs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Drop(BaseHTTPRequestHandler):
    # keep-alive, as a collector does: HTTP/1.0 would make the exporter open a connection for
    # every batch, a cost of this sink and not of tracing
    protocol_version = "HTTP/1.1"
    spans_bytes = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        _Drop.spans_bytes += len(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def otlp_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Drop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
