"""Storage: the SQLite store, the done log, bounded journals, and what may be a source of code."""
