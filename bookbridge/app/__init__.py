"""Settings, the app factory, the CLI and the data-access layer."""
