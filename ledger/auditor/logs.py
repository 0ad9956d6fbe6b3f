"""Read contract logs by block range, from any node or straight from the embedded chain.

Two sources give the same :class:`~ledger.chain.events.RawLog` values:

* :class:`Web3LogSource`: ``eth_getLogs`` in chunks of blocks with address and topic filters.
  Works against any node (anvil, geth) and against eth-tester through web3.
* :class:`EmbeddedLogSource`: reads the read-only py-evm chain directly. Each canonical header's
  bloom filter says whether the block may hold a log of our contracts; only those blocks'
  receipts are decoded. eth-tester's log filter walks every block through its serializers
  instead, which is what made history slow to read; here a block without our logs costs one
  header read.

Log indices follow the node's own numbering (eth-tester numbers per transaction, so the embedded
source does too), so events match the API index, which was read through web3.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from eth_bloom.bloom import BloomFilter
from hexbytes import HexBytes
from web3.types import FilterParams

from ledger.chain.client import Chain
from ledger.chain.embedded.backend import EmbeddedChain
from ledger.chain.events import RawLog, raw_log
from ledger.values import checksum

DEFAULT_CHUNK_BLOCKS = 2_000
"""Blocks per ``eth_getLogs`` call (public providers cap ranges; a local node takes any)."""

Progress = Callable[[int], None]
"""Called with the number of blocks just read."""


class LogSource(Protocol):
    """Where logs and block times come from."""

    def logs(
        self, first: int, last: int, addresses: Sequence[str], topics: frozenset[bytes] | None = None
    ) -> list[RawLog]:
        """Logs of ``addresses`` in blocks ``first..last`` (inclusive), in chain order,
        restricted to those whose ``topic0`` is in ``topics`` when given."""
        ...

    def block_time(self, number: int) -> int:
        """The timestamp of a block."""
        ...


def read_logs(
    source: LogSource,
    first: int,
    last: int,
    addresses: Sequence[str],
    topics: frozenset[bytes] | None = None,
    *,
    chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
    progress: Progress | None = None,
) -> Iterator[RawLog]:
    """Yield the logs of ``first..last`` chunk by chunk, reporting progress after each chunk."""
    start = first
    while start <= last:
        end = min(last, start + chunk_blocks - 1)
        yield from source.logs(start, end, addresses, topics)
        if progress is not None:
            progress(end - start + 1)
        start = end + 1


class Web3LogSource:
    """Logs through ``eth_getLogs`` (any node), block times through ``eth_getBlockByNumber``."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self._times: dict[int, int] = {}

    def logs(
        self, first: int, last: int, addresses: Sequence[str], topics: frozenset[bytes] | None = None
    ) -> list[RawLog]:
        params: FilterParams = {"fromBlock": first, "toBlock": last, "address": [checksum(a) for a in addresses]}
        if topics is not None:
            params["topics"] = [[HexBytes(t).to_0x_hex() for t in sorted(topics)]]
        entries = self.chain.get_logs(params)
        logs = [raw_log(entry) for entry in entries]
        logs.sort(key=lambda log: (log.block_number, log.log_index))
        return logs

    def block_time(self, number: int) -> int:
        cached = self._times.get(number)
        if cached is None:
            cached = self._times[number] = self.chain.block_timestamp(number)
        return cached


class EmbeddedLogSource:
    """Logs read from a (read-only) embedded chain's py-evm database, skipping blocks by bloom."""

    def __init__(self, embedded: EmbeddedChain) -> None:
        self.embedded = embedded
        self._times: dict[int, int] = {}

    def logs(
        self, first: int, last: int, addresses: Sequence[str], topics: frozenset[bytes] | None = None
    ) -> list[RawLog]:
        chain = self.embedded.backend.chain
        chaindb = chain.chaindb
        wanted = {bytes.fromhex(checksum(a)[2:]): checksum(a) for a in addresses}
        found: list[RawLog] = []
        for number in range(first, last + 1):
            header = chaindb.get_canonical_block_header_by_number(number)  # type: ignore[arg-type]
            self._times[number] = header.timestamp
            if not header.bloom:
                continue
            bloom = BloomFilter(header.bloom)
            if not any(address in bloom for address in wanted):
                continue
            block = chain.get_canonical_block_by_number(number)  # type: ignore[arg-type]
            receipts = block.get_receipts(chaindb)
            for transaction, receipt in zip(block.transactions, receipts, strict=True):
                for log_index, log in enumerate(receipt.logs):
                    emitter = wanted.get(log.address)
                    if emitter is None or not log.topics:
                        continue
                    log_topics = tuple(topic.to_bytes(32, "big") for topic in log.topics)
                    if topics is not None and log_topics[0] not in topics:
                        continue
                    found.append(
                        RawLog(emitter, log_topics, bytes(log.data), number, log_index, bytes(transaction.hash))
                    )
        return found

    def block_time(self, number: int) -> int:
        cached = self._times.get(number)
        if cached is None:
            chaindb = self.embedded.backend.chain.chaindb
            cached = self._times[number] = chaindb.get_canonical_block_header_by_number(number).timestamp  # type: ignore[arg-type]
        return cached
