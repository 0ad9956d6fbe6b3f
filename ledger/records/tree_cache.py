"""Recently used batch trees: receipts are cut from a batch's tree, rebuilt from its stored leaves on a miss."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from ledger.records.merkle import MerkleTree
from ledger.store.records import Batch


class TreeCache:
    """Recently used batch trees, rebuilt from their stored leaves on a miss (a few ms for 4,096).

    Trees are cached by batch and root: a batch resealed under another root gets its new tree.
    """

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._trees: OrderedDict[tuple[int, bytes], MerkleTree] = OrderedDict()
        self._lock = Lock()

    def tree(self, batch: Batch) -> MerkleTree:
        key = (batch.id, batch.root)
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
                return tree
        tree = MerkleTree.from_leaves(batch.leaf_list())
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > self._size:
                self._trees.popitem(last=False)
        return tree
