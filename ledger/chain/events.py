"""The one event reader: decode raw logs of the RecordAnchor and the ConsentRegistry from their ABIs.

The chain index, the consent client's history and the auditor all decode logs here, not through
web3's per-event objects: one table from ``topic0`` to the event's name and argument layout, built
once from the shipped artifacts, and ``eth_abi`` for the non-indexed data (the auditor reads tens
of thousands of logs: ``bench/audit_rate.py``). Every log source (``eth_getLogs`` on any node, or
the embedded chain's own receipts) produces the same :class:`RawLog`, so everything above them is
the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_signature_to_log_topic
from eth_utils.address import to_checksum_address

from ledger.chain.contracts import CONSENT_REGISTRY, RECORD_ANCHOR, load_artifact


@dataclass(frozen=True, slots=True)
class RawLog:
    """One log as a node returns it: emitting contract, topics, data and its place on chain.

    ``log_index`` is what the node reports (eth-tester numbers logs per transaction, anvil and
    geth per block); ``(block_number, tx_hash, log_index)`` identifies a log on either.
    """

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    log_index: int
    tx_hash: bytes


def raw_log(entry: Any) -> RawLog:
    """A log as ``eth_getLogs`` (web3's ``LogReceipt``) gives it."""
    return RawLog(
        address=to_checksum_address(entry["address"]),
        topics=tuple(bytes(t) for t in entry["topics"]),
        data=bytes(entry["data"]),
        block_number=int(entry["blockNumber"]),
        log_index=int(entry["logIndex"]),
        tx_hash=bytes(entry["transactionHash"]),
    )


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded event: which contract and event, its arguments, and where it is on chain.

    Arguments keep their ABI names; ``address`` values are checksummed, ``bytes32`` stay bytes,
    integers are ints.
    """

    contract: str
    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: bytes

    @property
    def position(self) -> tuple[int, int]:
        """Chain order within one node's numbering: ``(block, log index)``."""
        return (self.block_number, self.log_index)


@dataclass(frozen=True)
class _Layout:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"


@cache
def _layouts() -> dict[bytes, _Layout]:
    table: dict[bytes, _Layout] = {}
    for contract in (RECORD_ANCHOR, CONSENT_REGISTRY):
        for entry in load_artifact(contract).abi:
            if entry.get("type") != "event":
                continue
            topic = bytes(event_signature_to_log_topic(_signature(entry)))
            indexed = tuple((i["name"], i["type"]) for i in entry["inputs"] if i["indexed"])
            data = tuple((i["name"], i["type"]) for i in entry["inputs"] if not i["indexed"])
            # Both contracts inherit AccessControl: the same topic; the emitter tells them apart.
            table.setdefault(topic, _Layout("", entry["name"], indexed, data))
    return table


@cache
def event_topic(name: str) -> bytes:
    """``topic0`` of an event of either contract, by name (``"RootAnchored"``)."""
    for topic, layout in _layouts().items():
        if layout.name == name:
            return topic
    raise KeyError(name)


def topics_of(*names: str) -> frozenset[bytes]:
    """The ``topic0`` values of several events."""
    return frozenset(event_topic(n) for n in names)


def _value(kind: str, raw: Any) -> Any:
    if kind == "address":
        return to_checksum_address(raw)
    return raw


def decode_log(log: RawLog, contract: str) -> Event | None:
    """Decode a log emitted by ``contract`` (a name, e.g. ``"RecordAnchor"``), or None if unknown."""
    if not log.topics:
        return None
    layout = _layouts().get(log.topics[0])
    if layout is None or len(log.topics) != len(layout.indexed) + 1:
        return None
    args: dict[str, Any] = {}
    for (name, kind), topic in zip(layout.indexed, log.topics[1:], strict=True):
        (args[name],) = abi_decode([kind], topic)
        args[name] = _value(kind, args[name])
    if layout.data:
        values = abi_decode([kind for _, kind in layout.data], log.data)
        for (name, kind), value in zip(layout.data, values, strict=True):
            args[name] = _value(kind, value)
    return Event(contract, layout.name, args, log.block_number, log.log_index, log.tx_hash)
