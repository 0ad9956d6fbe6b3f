"""Reading the one event a transaction emitted, for contract tests."""

from __future__ import annotations

from typing import Any

from hexbytes import HexBytes
from web3.contract.contract import ContractEvent
from web3.types import TxReceipt


def single_event(event: ContractEvent, receipt: TxReceipt) -> dict[str, Any]:
    """The arguments of the one log in ``receipt``, which must be ``event``."""
    assert len(receipt["logs"]) == 1
    return dict(event.process_log(receipt["logs"][0])["args"])


def topics_of(receipt: TxReceipt) -> list[bytes]:
    """The indexed topics (signature excluded) of the one log in ``receipt``."""
    return [bytes(topic) for topic in receipt["logs"][0]["topics"][1:]]


def address_topic(address: str) -> bytes:
    """An address as an indexed event topic."""
    return bytes(12) + bytes(HexBytes(address))
