"""The fast receipt parser against the model, differentially: ``parse_receipt`` accepts what
``Receipt.parse`` accepts, with the same fields, and refuses what it refuses, on generated valid
receipts (any key order, optional constants left out, checksummed or single-case addresses, hex in
either case) and on mutations of them (a field replaced by another JSON value or a near miss, a
field dropped or added, the proof lengthened or a node spoiled, the text cut or a byte changed).

The parser is stricter than the model on purpose in two ways, which the oracle states: numbers must
be JSON integers (the model's lax mode takes ``true``, ``7.0`` or ``"5"``), and integers must fit
in 64 bits (orjson reads larger ones as floats; no chain value in a receipt is that large).

Derandomized, with pinned examples; each property runs in a few seconds.
"""

from __future__ import annotations

import json
from typing import Any

from eth_utils import to_checksum_address
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.auditor.receipt_format import ParsedReceipt, parse_receipt
from ledger.exceptions import InvalidProofError
from ledger.records.receipts import RECEIPT_VERSION, Receipt

INT_FIELDS = ("chainId", "blockNumber", "anchoredAt", "leafCount")
HASH_FIELDS = ("transactionHash", "root", "leaf", "digest", "salt")
CONSTANTS: dict[str, Any] = {
    "type": "careledger-receipt",
    "version": RECEIPT_VERSION,
    "digestAlgorithm": "sha-256",
    "treeFormat": "openzeppelin-standard-merkle-tree",
    "leafEncoding": ["bytes32", "bytes32"],
}
SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

hex32 = st.builds(
    lambda raw, upper: "0x" + (raw.hex().upper() if upper else raw.hex()),
    st.binary(min_size=32, max_size=32),
    st.booleans(),
)
address = st.builds(
    lambda raw, case: {
        "checksum": to_checksum_address(raw),
        "lower": "0x" + raw.hex(),
        "upper": "0x" + raw.hex().upper(),
    }[case],
    st.binary(min_size=20, max_size=20),
    st.sampled_from(["checksum", "lower", "upper"]),
)


@st.composite
def valid_receipts(draw: st.DrawFn) -> dict[str, Any]:
    """A receipt the model accepts: every required field valid, each constant present or not, keys shuffled."""
    data: dict[str, Any] = {
        "chainId": draw(st.integers(1, 2**63)),
        "contract": draw(address),
        "blockNumber": draw(st.integers(0, 2**63)),
        "anchoredAt": draw(st.integers(0, 2**63)),
        "anchorer": draw(address),
        "leafCount": draw(st.integers(1, 2**63)),
        "proof": draw(st.lists(hex32, max_size=64)),
        **{name: draw(hex32) for name in HASH_FIELDS},
    }
    data.update({k: v for k, v in CONSTANTS.items() if draw(st.booleans())})
    return dict(draw(st.permutations(list(data.items()))))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=4,
)


def _near_misses(value: Any) -> st.SearchStrategy[Any]:
    """Values one edit away from a valid one of the same field."""
    if isinstance(value, bool) or not isinstance(value, (int, str, list)):
        return json_values
    if isinstance(value, int):
        return st.sampled_from([0, -1, 0, -1, 1, True, False, float(value), str(value), 2**64, 2**64 - 1, 2**63])
    if isinstance(value, list):
        return st.sampled_from([[], [*value, value[0]] if value else ["0x" + "11" * 32], value * 65, ["0x11"], [1]])
    edits = [
        value.upper(),
        value.lower(),
        "0X" + value[2:],
        value[2:],
        value + "0",
        value[:-1],
        value[:-1] + "g",
        " " + value,
        value[:-2] + " 1",
        value[:-1] + "\u0661",
        value.replace("0x", "0x\n", 1),
    ]
    if len(value) == 42:  # an address: a checksum spoiled by one letter's case
        flipped = next((i for i, c in enumerate(value) if c.isalpha() and i > 1), None)
        if flipped is not None:
            edits.append(value[:flipped] + value[flipped].swapcase() + value[flipped + 1 :])
    return st.sampled_from(edits)


@st.composite
def mutated_receipts(draw: st.DrawFn) -> str:
    """A valid receipt's JSON after one to three mutations."""
    data = draw(valid_receipts())
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):  # mostly one: a second often hides the first
        kind = draw(st.sampled_from(["replace", "near", "near", "near", "drop", "add", "constant"]))
        keys = sorted(data)
        if kind == "drop" and keys:
            data.pop(draw(st.sampled_from(keys)))
        elif kind == "add":
            data[draw(st.sampled_from(["extra", "Root", "chain_id", "proofs"]))] = draw(json_values)
        elif kind == "constant":
            name = draw(st.sampled_from(sorted(CONSTANTS)))
            data[name] = draw(st.sampled_from([2, True, 1.0, "1", "sha-1", ["bytes32"], ["bytes32", "bytes"], None]))
        elif keys:
            key = draw(st.sampled_from(keys))
            data[key] = draw(json_values if kind == "replace" else _near_misses(data[key]))
    text = json.dumps(data)
    damage = draw(st.sampled_from(["none", "none", "none", "none", "cut", "byte"]))
    if damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "byte":
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + draw(st.sampled_from(['"', "}", ",", "0", "x", "\\"])) + text[at + 1 :]
    return text


def _fields(parsed: ParsedReceipt | Receipt) -> tuple[Any, ...]:
    if isinstance(parsed, Receipt):
        return (
            (parsed.chain_id, parsed.contract, parsed.root, parsed.block_number),
            (parsed.anchorer, parsed.anchored_at, parsed.transaction_hash, parsed.leaf_count),
            (parsed.leaf, tuple(parsed.proof), parsed.digest, parsed.salt),
        )
    claim = parsed.claim
    return (
        (claim.chain_id, claim.contract, claim.root, claim.block_number),
        (claim.anchorer, claim.anchored_at, claim.transaction_hash, claim.leaf_count),
        (parsed.leaf, parsed.proof, parsed.digest, parsed.salt),
    )


def _model(text: str) -> Receipt | None:
    """The model's verdict, with the parser's two stated strictnesses applied."""
    try:
        receipt = Receipt.parse(text)
    except InvalidProofError:
        return None
    data = json.loads(text)
    if any(type(data[name]) is not int or not -(2**63) <= data[name] < 2**64 for name in INT_FIELDS):
        return None  # coerced by the model's lax mode, or past 64 bits: refused by the parser
    return receipt


def _assert_alike(text: str) -> None:
    expected = _model(text)
    try:
        parsed: ParsedReceipt | None = parse_receipt(text)
    except InvalidProofError as err:
        assert expected is None, f"the model accepts what the parser refuses ({err.message}): {text}"
        return
    assert expected is not None, f"the parser accepts what the model refuses: {text}"
    assert parsed is not None and _fields(parsed) == _fields(expected)


def _valid(**changes: Any) -> str:
    data: dict[str, Any] = {
        "chainId": 1,
        "contract": "0x" + "ab" * 20,
        "transactionHash": "0x" + "11" * 32,
        "blockNumber": 7,
        "anchoredAt": 0,
        "anchorer": "0x" + "CD" * 20,
        "root": "0x" + "22" * 32,
        "leafCount": 2,
        "leaf": "0x" + "33" * 32,
        "proof": ["0x" + "44" * 32],
        "digest": "0x" + "55" * 32,
        "salt": "0x" + "66" * 32,
        **CONSTANTS,
    }
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


@SETTINGS
@given(valid_receipts())
@example(json.loads(_valid()))
@example(json.loads(_valid(contract="0x" + "AB" * 20, proof=[])))
def test_valid_receipts_parse_to_the_models_fields(data: dict[str, Any]) -> None:
    text = json.dumps(data)
    assert _model(text) is not None
    _assert_alike(text)


@settings(SETTINGS, max_examples=1000)
@given(mutated_receipts())
@example(_valid(version=True))  # True == 1: the model refuses it for Literal[2]
@example(_valid(version=2.0))
@example(_valid(version=1))  # the previous version: both refuse it (with the reason)
@example(_valid(leafEncoding=["bytes32", "bytes32", "bytes32"]))
@example(_valid(contract="ab" * 20))  # no 0x: the model's pattern refuses it
@example(_valid(anchorer="0X" + "cd" * 20))
@example(_valid(blockNumber=2**64))
@example(_valid(chainId=True))
@example(_valid(leafCount=0))
@example(_valid(type=...))
@example(_valid(proof=["0x" + "44" * 32] * 65))
@example(_valid(salt="0x" + "66" * 31 + "6\u0661"))
@example(_valid(root="0x" + "22" * 31 + " 2"))
def test_mutated_receipts_are_judged_as_the_model_judges_them(text: str) -> None:
    _assert_alike(text)
