"""wrk sends every body with its own headers and reports what the server answered."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import driver

seen: list[tuple[bytes, str | None]] = []


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        seen.append((body, self.headers.get("Authorization")))
        answer = b'{"errors": []}' if body == b'{"bad": 1}' else b'{"data": {}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.send_header("x-bench-sql", "2")
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk not installed (python -m bench installs it)"
)
def test_each_body_goes_with_its_own_headers(echo: str) -> None:
    bodies = [b'{"who": "a"}', b'{"who": "b"}', b'{"bad": 1}']
    each = [{"Authorization": "Bearer a"}, {"Authorization": "Bearer b"}, {}]
    script = driver.write_script(bodies, "/graphql", {"Authorization": "Bearer all"}, each)
    try:
        got = driver.wrk(echo, script, concurrency=2, seconds=1)
    finally:
        script.unlink()
    # wrk stops counting with up to one request per connection still on the way
    assert 10 < got.requests <= len(seen) <= got.requests + 2
    pairs = set(seen)
    assert pairs == {
        (b'{"who": "a"}', "Bearer a"),
        (b'{"who": "b"}', "Bearer b"),
        (b'{"bad": 1}', "Bearer all"),
    }
    assert 0 < got.bad < got.requests  # the answers with "errors" are counted as bad
    assert got.sql_per_request == 2.0
