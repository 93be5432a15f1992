"""The embedded runtime: `hub serve` on SQLite files, the projections following the log in a
child process it supervises (or in a thread)."""
