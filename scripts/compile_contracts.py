#!/usr/bin/env python3
"""Compile the Solidity contracts into the artifacts shipped with the package.

Runs the pinned compiler (solc-js from ``node_modules``, wrapped by ``scripts/solcjs.js`` so that
py-solc-x can drive it offline) over ``contracts/`` with fixed settings and writes one JSON
artifact per contract: ABI, creation and runtime bytecode, where the runtime bytecode holds
immutables (filled in at deployment, so that deployed code can be compared with the artifact), and
the compiler's metadata (which pins the compiler version, settings and the keccak of every source,
OpenZeppelin's included).

Production contracts go to ``ledger/chain/artifacts/`` (loaded at run time: running the service needs no
compiler); test-only contracts (``contracts/test/``) go to ``tests/artifacts/``.

``--check`` compiles and exits 1 if any committed artifact differs from what the sources give.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import solcx

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT / "contracts"
SOLC_WRAPPER = ROOT / "scripts" / "solcjs.js"
COMPILER_VERSION = "0.8.28"
EVM_VERSION = "cancun"
OPTIMIZER_RUNS = 10_000

PRODUCTION_OUT = ROOT / "ledger" / "chain" / "artifacts"
TEST_OUT = ROOT / "tests" / "artifacts"


def standard_json_input() -> dict[str, Any]:
    """The compiler input: every ``.sol`` file under ``contracts/``, by path relative to the repo."""
    sources = {
        path.relative_to(ROOT).as_posix(): {"content": path.read_text(encoding="utf-8")}
        for path in sorted(CONTRACTS.rglob("*.sol"))
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "metadata": {"bytecodeHash": "ipfs"},
            "outputSelection": {
                "*": {
                    "*": [
                        "abi",
                        "evm.bytecode.object",
                        "evm.deployedBytecode.object",
                        "evm.deployedBytecode.immutableReferences",
                        "metadata",
                    ]
                }
            },
        },
    }


def _immutable_ranges(deployed: dict[str, Any]) -> list[list[int]]:
    """``[start, length]`` (bytes) of every immutable in the runtime bytecode, in order."""
    ranges = (
        [entry["start"], entry["length"]] for refs in deployed.get("immutableReferences", {}).values() for entry in refs
    )
    return sorted(ranges)


def compile_artifacts() -> dict[Path, str]:
    """Compile and return the text of every artifact file, by the path it belongs at."""
    input_data = standard_json_input()
    output = solcx.compile_standard(input_data, solc_binary=SOLC_WRAPPER, base_path=str(ROOT), allow_paths=[str(ROOT)])
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SystemExit("\n".join(e["formattedMessage"] for e in errors))
    for warning in output.get("errors", []):
        if warning.get("severity") != "error":
            print(warning["formattedMessage"], file=sys.stderr)
    artifacts: dict[Path, str] = {}
    for source_name, contracts in output["contracts"].items():
        if not source_name.startswith("contracts/") or "/interfaces/" in source_name:
            continue
        out_dir = TEST_OUT if source_name.startswith("contracts/test/") else PRODUCTION_OUT
        for contract_name, compiled in contracts.items():
            artifact = {
                "contractName": contract_name,
                "sourceName": source_name,
                "compiler": {"version": COMPILER_VERSION, "settings": input_data["settings"]},
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "immutableRanges": _immutable_ranges(compiled["evm"]["deployedBytecode"]),
                "metadata": compiled["metadata"],
            }
            text = json.dumps(artifact, indent=2, sort_keys=True) + "\n"
            artifacts[out_dir / f"{contract_name}.json"] = text
    return artifacts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if committed artifacts differ")
    args = parser.parse_args()
    artifacts = compile_artifacts()
    if args.check:
        stale = [p for p, text in artifacts.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for out_dir in (PRODUCTION_OUT, TEST_OUT):
            stale += [p for p in out_dir.glob("*.json") if p not in artifacts]
        for path in stale:
            print(f"stale artifact: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for out_dir in (PRODUCTION_OUT, TEST_OUT):
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("*.json"):
            if old not in artifacts:
                old.unlink()
    for path, text in artifacts.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
