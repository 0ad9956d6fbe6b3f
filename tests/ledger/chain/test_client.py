"""The chain boundary: addresses, and web3/eth-tester/transport errors translated into ledger errors; the
shared fixtures are on the chain that CARELEDGER_TEST_CHAIN names."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from eth_abi.abi import encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import ContractCustomError

from ledger.chain.client import Chain, translate_error
from ledger.exceptions import ChainUnavailableError, ContractRevertError, InvalidHexError
from ledger.runtime import Ledger
from ledger.values import checksum
from tests.support.chain_under_test import ChainUnderTest

ADDRESS = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
EMBEDDED_CHAIN_ID, ANVIL_CHAIN_ID = 131277322940537, 31337


def test_addresses_are_checksummed_and_wrong_checksums_refused() -> None:
    assert checksum(ADDRESS.lower()) == ADDRESS and checksum("0x" + ADDRESS[2:].upper()) == ADDRESS
    for bad in ("0x8Ba1f109551bD432803012645Ac136ddd64DBA72", "0x1234", "not an address", ADDRESS + "00"):
        with pytest.raises(InvalidHexError):
            checksum(bad)


def test_custom_errors_are_decoded_by_name_with_checksummed_addresses() -> None:
    data = function_signature_to_4byte_selector("RecordAnchorAlreadyChanged(address,bytes32,bytes32)") + encode(
        ["address", "bytes32", "bytes32"], [ADDRESS.lower(), b"\x01" * 32, b"\x02" * 32]
    )
    err = translate_error(ContractCustomError("0x" + data.hex(), data="0x" + data.hex()))
    assert isinstance(err, ContractRevertError) and err.error == "RecordAnchorAlreadyChanged"
    assert err.args_by_name == {"anchorer": ADDRESS, "root": b"\x01" * 32, "leaf": b"\x02" * 32}


def test_unknown_reverts_and_transport_failures() -> None:
    unknown = translate_error(ContractCustomError("0xdeadbeef", data="0xdeadbeef"))
    assert isinstance(unknown, ContractRevertError) and unknown.error == "UnknownRevert"
    assert isinstance(translate_error(requests.ConnectionError("refused")), ChainUnavailableError)


def test_a_revert_on_the_chain_comes_back_by_name(ledger: Ledger) -> None:
    with pytest.raises(ContractRevertError) as caught:
        ledger.anchors.anchor(b"\x00" * 32, 1, ledger.anchorer())
    assert caught.value.error == "RecordAnchorZeroRoot" and caught.value.code == "contract_revert"


def test_an_unreachable_node_is_chain_unavailable() -> None:
    with pytest.raises(ChainUnavailableError):
        Chain(Web3(HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 2})))


def test_the_ledger_fixture_is_on_the_chain_under_test(ledger: Ledger, chain_under_test: ChainUnderTest) -> None:
    embedded = isinstance(ledger.chain.w3.provider, EthereumTesterProvider)
    assert embedded == (chain_under_test.kind == "embedded")
    assert ledger.chain.chain_id == (EMBEDDED_CHAIN_ID if embedded else ANVIL_CHAIN_ID)


def test_many_threads_sending_from_one_account_get_distinct_nonces(ledger: Ledger) -> None:
    """Requests relaying at once through the same key: every transaction mined, none lost to a
    nonce collision, the account's nonce advanced by exactly the number sent."""
    anchorer = ledger.anchorer()
    start = ledger.chain.w3.eth.get_transaction_count(anchorer.address)
    roots = [os.urandom(32) for _ in range(24)]
    with ThreadPoolExecutor(8) as pool:
        anchored = list(pool.map(lambda root: ledger.anchors.anchor(root, 1, anchorer), roots))
    assert len({a.tx_hash for a in anchored}) == len(roots)
    assert all(ledger.anchors.anchor_of(anchorer.address, root) is not None for root in roots)
    assert ledger.chain.w3.eth.get_transaction_count(anchorer.address) == start + len(roots)
