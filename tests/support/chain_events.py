"""Helpers for contract tests: the one event a transaction emitted, and expected reverts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hexbytes import HexBytes
from web3.contract.contract import ContractEvent
from web3.types import TxReceipt

from ledger.exceptions import ContractRevertError
from ledger.runtime import Ledger


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


@contextmanager
def reverts(ledger: Ledger, error: str, **expected: Any) -> Iterator[None]:
    """Expect the block to revert with ``error(**expected)`` and nothing to be mined."""
    block = ledger.chain.block_number()
    with pytest.raises(ContractRevertError) as caught:
        yield
    assert caught.value.error == error
    assert caught.value.args_by_name == expected
    assert ledger.chain.block_number() == block, "a rejected call must not be sent"
