"""The bench's process handling: CPU and memory of a server read from /proc, and no leftovers."""

from __future__ import annotations

import os
import sys

import pytest

from bench import servers


def test_a_server_reports_cpu_and_memory_and_is_stopped_afterwards() -> None:
    port = servers.free_port()
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    base = f"http://127.0.0.1:{port}"
    with servers.process(cmd, {}, base, servers.answers_get("/"), quiet=True) as url:
        assert url == base
        pid = servers._PIDS[base]
        assert (servers.cpu_seconds(base) or 0.0) > 0.0  # at least the interpreter's start
        memory = servers.memory_mb(base)
        assert memory is not None
        peak, rss = memory
        assert peak >= rss > 5  # MB: a Python interpreter
        servers.reset_peak(base)
        after = servers.memory_mb(base)
        assert after is not None and after[0] <= peak
    assert servers.memory_mb(base) is None and servers.cpu_seconds(base) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_server_that_exits_says_so() -> None:
    cmd = [sys.executable, "-c", "raise SystemExit(3)"]
    down = servers.process(cmd, {}, "http://127.0.0.1:9", servers.answers_get("/"))
    with pytest.raises(SystemExit, match="exited with 3"), down:
        pass
