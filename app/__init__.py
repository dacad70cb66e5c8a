"""bookbridge: the integration backend between a publisher catalog and a student study product."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml's `version` is the one source: the CLI, /healthz and build_info read this.
    __version__ = version("bookbridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
