"""The data directory's own files: one writing process at a time, and readable by its user alone.

* :mod:`~ledger.files.locks`: exclusive non-blocking ``flock`` locks (one writer per embedded chain or SQLite store).
* :mod:`~ledger.files.private`: the directory 0700 and every file in it 0600, whatever the umask.
* :mod:`~ledger.files.free_space`: the room left on the data directory's filesystem (readiness).
"""
