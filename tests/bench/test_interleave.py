"""The traced comparison against real servers through wrk: a slower server reads slower, and two
identical servers read 1.0 within the interval the comparison reports."""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from bench import driver, measure
from tests.http_helpers import serving

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk not installed (python -m bench installs it)"
)


def handler(delay: float) -> type[BaseHTTPRequestHandler]:
    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each answer waits for a delayed ACK (40 ms)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b'{"data": {}}')

        def log_message(self, *args: object) -> None:
            pass

    return Answer


def serve(delay: float) -> Iterator[str]:
    with serving(handler(delay)) as url:
        yield url


@pytest.fixture
def steady() -> Iterator[str]:
    yield from serve(0.002)


@pytest.fixture
def twin() -> Iterator[str]:
    yield from serve(0.002)


@pytest.fixture
def slow() -> Iterator[str]:
    yield from serve(0.006)


@pytest.fixture
def scripts() -> Iterator[tuple[Path, Path]]:
    made = (driver.write_script([b"{}"], "/graphql"), driver.write_script([b"{}"], "/graphql"))
    yield made
    for script in made:
        script.unlink()


def compare(a: str, b: str, scripts: tuple[Path, Path]) -> dict[str, object]:
    args = argparse.Namespace(repeat=1, warmup=1.0, duration=4.0)
    slices = measure.interleave(args, a, b, scripts, 1, 0)
    assert "".join(s.server for s in slices) == "abbabaab"
    row = measure.summarize("x", 1, (measure.per_repeat(slices, "b"), None), ([], None), ([], None))
    measure.vs_untraced_slices(row, slices)
    return row


def test_a_server_three_times_slower_per_request_reads_about_a_third(
    steady: str, slow: str, scripts: tuple[Path, Path]
) -> None:
    row = compare(steady, slow, scripts)
    ratio = row["vs_untraced"]
    low, high = row["_detail"]["vs_untraced_interval"]  # type: ignore[index]
    # 2 ms against 6 ms of sleep per request, one client, plus each request's own overhead
    assert isinstance(ratio, float) and 0.2 < low <= ratio <= high < 0.6


def test_two_identical_servers_read_one_within_the_interval(
    steady: str, twin: str, scripts: tuple[Path, Path]
) -> None:
    row = compare(steady, twin, scripts)
    low, high = row["_detail"]["vs_untraced_interval"]  # type: ignore[index]
    assert low <= 1.0 <= high or abs(float(row["vs_untraced"]) - 1.0) < 0.1  # type: ignore[arg-type]
    assert 0.8 < float(row["vs_untraced"]) < 1.25  # type: ignore[arg-type]
