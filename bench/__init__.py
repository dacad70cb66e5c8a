"""The bookbridge benchmark suite: seed, serve, drive over HTTP, compare with the raw limit."""
