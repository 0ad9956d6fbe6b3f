"""Open the chain and the deployment an audit reads, pinned at one head block.

An audit needs only a chain and the contracts' addresses: a JSON-RPC URL, or the embedded
chain's data directory opened READ-ONLY (no lock taken, so it runs beside the API's writer), and
the addresses with the deploy block, given explicitly or read from ``deployment.json``. The head
block is fixed when the reader opens, and every view call is made at that block, so replayed
events and the contracts' state describe the same moment even while the ledger keeps writing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3

from ledger.auditor.logs import DEFAULT_CHUNK_BLOCKS, EmbeddedLogSource, LogSource, Progress, Web3LogSource, read_logs
from ledger.chain.client import Chain
from ledger.chain.contracts import CONSENT_REGISTRY, RECORD_ANCHOR
from ledger.chain.deployment import DEPLOYMENT_FILE, require_current_code
from ledger.chain.embedded.backend import open_embedded_web3
from ledger.chain.events import Event, decode_log, topics_of
from ledger.consent.registry import ConsentRegistryClient
from ledger.exceptions import DeploymentError, InputError, NotFoundError
from ledger.records.anchoring import RecordAnchorClient
from ledger.values import checksum


@dataclass(frozen=True)
class AuditTarget:
    """Which deployment to audit: both contracts, the block history starts at, and (if known) the chain id."""

    record_anchor: str
    consent_registry: str
    from_block: int = 0
    chain_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "record_anchor", checksum(self.record_anchor))
        object.__setattr__(self, "consent_registry", checksum(self.consent_registry))
        if self.from_block < 0:
            raise InputError("the first block cannot be negative", field="from_block")

    @classmethod
    def from_deployment(cls, data_dir: Path) -> AuditTarget:
        """Read ``DIR/deployment.json`` (only the addresses, deploy block and chain id are used)."""
        path = Path(data_dir) / DEPLOYMENT_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text("utf-8"))
            return cls(
                data["record_anchor"], data["consent_registry"], int(data["deploy_block"]), int(data["chain_id"])
            )
        except FileNotFoundError as err:
            raise NotFoundError(f"no {DEPLOYMENT_FILE} in {data_dir}", path=str(path)) from err
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path} is not a deployment record: {err}", path=str(path)) from err


@dataclass
class ChainReader:
    """A chain, the two contracts on it, and a log source, all read at block ``head``."""

    chain: Chain
    target: AuditTarget
    source: LogSource
    head: int
    anchors: RecordAnchorClient = field(init=False)
    consents: ConsentRegistryClient = field(init=False)

    def __post_init__(self) -> None:
        self.anchors = RecordAnchorClient(self.chain, self.target.record_anchor, self.target.from_block)
        self.consents = ConsentRegistryClient(self.chain, self.target.consent_registry, self.target.from_block)

    @property
    def chain_id(self) -> int:
        return self.chain.chain_id

    def events(
        self,
        *,
        anchor_events: Sequence[str] = (),
        consent_events: Sequence[str] = (),
        first: int | None = None,
        last: int | None = None,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
        progress: Progress | None = None,
    ) -> list[Event]:
        """Decoded events of the named kinds from both contracts, in chain order."""
        names = (*anchor_events, *consent_events)
        if not names:
            return []
        addresses = []
        if anchor_events:
            addresses.append(self.target.record_anchor)
        if consent_events:
            addresses.append(self.target.consent_registry)
        wanted = {
            self.target.record_anchor: frozenset(anchor_events),
            self.target.consent_registry: frozenset(consent_events),
        }
        contract_of = {self.target.record_anchor: RECORD_ANCHOR, self.target.consent_registry: CONSENT_REGISTRY}
        events: list[Event] = []
        start = self.target.from_block if first is None else first
        end = self.head if last is None else min(last, self.head)
        for log in read_logs(
            self.source, start, end, addresses, topics_of(*names), chunk_blocks=chunk_blocks, progress=progress
        ):
            event = decode_log(log, contract_of[log.address])
            if event is not None and event.name in wanted[log.address]:
                events.append(event)
        return events

    def call(self, fn: Any) -> Any:
        """Call a view function at the pinned head block."""
        return self.chain.call(fn, self.head)

    def close(self) -> None:
        """Release the chain (and the embedded store)."""
        self.chain.close()

    def __enter__(self) -> ChainReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_reader(
    *, rpc_url: str | None = None, data_dir: Path | None = None, target: AuditTarget | None = None
) -> ChainReader:
    """Open the chain to audit and check the deployment is on it.

    Args:
        rpc_url: A JSON-RPC node. Without it, ``data_dir`` is the embedded chain, opened read-only.
        data_dir: The embedded chain's directory; also where ``deployment.json`` is read from when
            ``target`` is not given.
        target: The contracts' addresses and first block (overrides ``deployment.json``).

    Raises:
        InputError: Neither a chain nor addresses were given.
        NotFoundError: No chain or no deployment record in ``data_dir``.
        ChainUnavailableError: The node does not answer.
        DeploymentError: Another chain id than recorded, or no code at an address.
        OutdatedDeploymentError: The contracts are not this release's (an earlier version, whose
            rules this auditor does not check).
    """
    if target is None:
        if data_dir is None:
            raise InputError("give the contracts' addresses, or --data-dir to read deployment.json")
        target = AuditTarget.from_deployment(data_dir)
    closer: Callable[[], None] | None = None
    if rpc_url:
        chain = Chain(Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30})))
        source: LogSource = Web3LogSource(chain)
    elif data_dir is not None:
        embedded = open_embedded_web3(Path(data_dir), read_only=True)
        closer = embedded.close
        try:
            chain = Chain(embedded.w3, close=closer, serialize=True)
        except BaseException:
            embedded.close()
            raise
        source = EmbeddedLogSource(embedded)
        try:
            _name_the_caller(chain)
        except BaseException:
            chain.close()
            raise
    else:
        raise InputError("give --rpc-url or --data-dir")
    try:
        _check_target(chain, target)
        return ChainReader(chain, target, source, chain.block_number())
    except BaseException:
        chain.close()
        raise


def _name_the_caller(chain: Chain) -> None:
    """Make view calls from the embedded chain's first account, named once.

    Without a sender, web3's eth-tester middleware asks the node for its accounts (three times)
    before every call, to pick that same first account: about a third of what a view call costs
    there. Naming it once changes nothing else.
    """
    with chain.io():
        accounts = chain.w3.eth.accounts
        if accounts:
            chain.w3.eth.default_account = accounts[0]


def _check_target(chain: Chain, target: AuditTarget) -> None:
    if target.chain_id is not None and target.chain_id != chain.chain_id:
        raise DeploymentError(
            f"the deployment is on chain {target.chain_id}, the node on chain {chain.chain_id}",
            expected=target.chain_id,
            actual=chain.chain_id,
        )
    for name, address in ((RECORD_ANCHOR, target.record_anchor), (CONSENT_REGISTRY, target.consent_registry)):
        code = chain.code_at(address)
        if not code:
            raise DeploymentError(f"no {name} contract at {address}", address=address)
        require_current_code(name, address, code)
