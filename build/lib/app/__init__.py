"""bookbridge: the integration backend between a publisher catalog and a student study product."""

__version__ = "0.1.0"
