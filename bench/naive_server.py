"""The naive peer for bench/api_load.py: acknowledge into SQLite, then anchor each record alone.

The ceiling server of ``bench/ceiling_server.py`` (same body, key check and group commit into
SQLite WAL, synchronous=FULL) plus one background thread in the same process, as the service's
batcher is, that anchors every acknowledged record in its own transaction (no batching, no Merkle
tree) on an embedded chain in ``--chain-dir`` and marks it anchored. ``GET /stats`` answers
``{"ready": 0 or 1, "acknowledged": n, "anchored": m}``, so the benchmark compares records *anchored* per second.

    .venv/bin/python bench/naive_server.py --port 8002 --db /tmp/naive.sqlite3 --key KEY --chain-dir /tmp/chain
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ceiling_server import GroupCommit, arguments, create_app, serve

from ledger.config import Settings
from ledger.records.hashing import leaf_hash, new_salt
from ledger.runtime import open_ledger

SCRYPT_N = 16  # throwaway keys: the benchmark measures anchoring, not scrypt


class Anchorer:
    """Anchors acknowledged rows one transaction each, oldest first, until stopped."""

    def __init__(self, db_path: str, chain_dir: Path) -> None:
        self.db_path = db_path
        self.chain_dir = chain_dir
        self.anchored = 0
        self.ready = False
        self.stopping = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self.db_path, isolation_level=None)
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("ALTER TABLE records ADD COLUMN anchored INTEGER NOT NULL DEFAULT 0")
        with open_ledger(Settings(data_dir=self.chain_dir, keystore_scrypt_n=SCRYPT_N)) as ledger:
            signer = ledger.anchorer()  # created, funded and granted before the load starts
            self.ready = True
            last = 0
            while not self.stopping.is_set():
                rows = db.execute("SELECT rowid, digest FROM records WHERE rowid > ? ORDER BY rowid LIMIT 64", (last,))
                batch = rows.fetchall()
                if not batch:
                    self.stopping.wait(0.05)
                for rowid, digest in batch:
                    last = rowid
                    ledger.anchors.anchor(leaf_hash(new_salt(), bytes.fromhex(digest[2:])), 1, signer)
                    db.execute("UPDATE records SET anchored = 1 WHERE rowid = ?", (rowid,))
                    self.anchored += 1
                    if self.stopping.is_set():
                        break
        db.close()


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--chain-dir", type=Path, required=True)
    args = parser.parse_args()
    anchorer = Anchorer(args.db, args.chain_dir)
    intakes: list[GroupCommit] = []

    def background(intake: GroupCommit) -> Callable[[], None]:
        intakes.append(intake)
        thread = threading.Thread(target=anchorer.run, name="naive-anchorer", daemon=True)
        thread.start()

        def stop() -> None:
            anchorer.stopping.set()
            thread.join(30)

        return stop

    app = create_app(args.db, args.key, background)

    @app.get("/stats")
    def stats() -> dict[str, int]:
        acknowledged = intakes[0].acknowledged if intakes else 0
        return {"ready": int(anchorer.ready), "acknowledged": acknowledged, "anchored": anchorer.anchored}

    serve(app, args.port)


if __name__ == "__main__":
    main()
