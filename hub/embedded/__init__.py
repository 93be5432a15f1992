"""The embedded runtime: one process, SQLite files, projections following the log in-process."""
