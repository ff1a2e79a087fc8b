"""Files: atomic writes, checked reads, locks, fault-injection points, and the layout of every output (names and
table schemas). Imports only the shared vocabulary (errors, config, spec)."""
