"""The generator of ``fhir_required_codes.json``: how it expands value sets and finds bindings, and
that the shipped file is exactly what it makes from the official definitions (where they are here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import paths
from tests.support.requirements import unavailable
from tests.support.scripts import load_script

generator = load_script("fhir_required_codes")
SHIPPED = paths.REPO / "ledger" / "records" / "fhir_required_codes.json"


def _code_system(url: str, *concepts: dict[str, Any], content: str = "complete") -> dict[str, Any]:
    return {"resourceType": "CodeSystem", "url": url, "content": content, "concept": list(concepts)}


def _value_set(url: str, **compose: Any) -> dict[str, Any]:
    return {"resourceType": "ValueSet", "url": url, "compose": compose}


def _structure(kind: str, *elements: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "StructureDefinition",
        "id": kind,
        "kind": "resource",
        "snapshot": {"element": [{"path": kind}, *elements]},
    }


def _element(
    path: str, types: list[str], strength: str = "required", value_set: str = "urn:vs:status"
) -> dict[str, Any]:
    return {
        "path": path,
        "type": [{"code": t} for t in types],
        "binding": {"strength": strength, "valueSet": value_set},
    }


def _definitions(*resources: dict[str, Any]) -> Any:
    found = generator.Definitions()
    for resource in resources:
        found.add(resource)
    return found


STATUS = _code_system("urn:cs:status", {"code": "a", "concept": [{"code": "a1"}]}, {"code": "b"})


@pytest.mark.parametrize(
    ("compose", "codes"),
    [
        ({"include": [{"system": "urn:cs:status"}]}, {"urn:cs:status": {"a", "a1", "b"}}),  # nested concepts too
        ({"include": [{"system": "urn:cs:status", "concept": [{"code": "b"}]}]}, {"urn:cs:status": {"b"}}),
        (
            {
                "include": [{"system": "urn:cs:status"}],
                "exclude": [{"system": "urn:cs:status", "concept": [{"code": "a"}]}],
            },
            {"urn:cs:status": {"a1", "b"}},
        ),
        ({"include": [{"valueSet": ["urn:vs:other"]}]}, {"urn:cs:status": {"b"}}),
    ],
    ids=["a whole code system", "listed codes", "an exclusion", "another value set"],
)
def test_value_sets_are_expanded_from_their_compose(compose: dict[str, Any], codes: dict[str, set[str]]) -> None:
    other = _value_set("urn:vs:other", include=[{"system": "urn:cs:status", "concept": [{"code": "b"}]}])
    definitions = _definitions(STATUS, other, _value_set("urn:vs:status", **compose))
    assert definitions.codes("urn:vs:status|1.0") == codes


@pytest.mark.parametrize(
    "resources",
    [
        [_value_set("urn:vs:status", include=[{"system": "urn:ietf:bcp:47"}])],
        [_code_system("urn:cs:x", content="fragment"), _value_set("urn:vs:status", include=[{"system": "urn:cs:x"}])],
        [STATUS, _value_set("urn:vs:status", include=[{"system": "urn:cs:status", "filter": [{"op": "is-a"}]}])],
        [],
    ],
    ids=["a grammar", "a fragment", "a filter", "no value set"],
)
def test_a_value_set_that_cannot_be_listed_leaves_its_binding_unchecked(resources: list[dict[str, Any]]) -> None:
    structure = _structure("Patient", _element("Patient.gender", ["code"]))
    found = generator.required_bindings(_definitions(*resources, *_kinds_but("Patient"), structure))
    assert "Patient" not in found["bindings"]
    assert [u["element"] for u in found["unchecked"]] == ["Patient.gender"]


def _kinds_but(kind: str) -> list[dict[str, Any]]:
    return [_structure(other) for other in generator.KINDS if other != kind]


def test_only_required_bindings_of_coded_elements_are_listed_with_their_json_keys() -> None:
    structure = _structure(
        "Bundle",
        _element("Bundle.type", ["code"]),
        _element("Bundle.link", ["BackboneElement"], strength="example"),
        _element("Bundle.link.relation", ["code"]),
        {"path": "Bundle.entry.link", "contentReference": "#Bundle.link"},
        _element("Bundle.entry.value[x]", ["string", "Coding", "CodeableConcept"]),
        _element("Bundle.entry.category", ["CodeableConcept"], strength="extensible"),
        _element("Bundle.entry.note", ["string"]),
    )
    status = _value_set("urn:vs:status", include=[{"system": "urn:cs:status"}])
    found = generator.required_bindings(_definitions(STATUS, status, structure, *_kinds_but("Bundle")))
    assert [(".".join(b["path"]), b["type"]) for b in found["bindings"]["Bundle"]] == [
        ("type", "code"),
        ("link.relation", "code"),
        ("entry.link.relation", "code"),  # through the content reference
        ("entry.valueCoding", "Coding"),
        ("entry.valueCodeableConcept", "CodeableConcept"),
    ]
    assert found["valueSets"] == {"urn:vs:status": {"urn:cs:status": ["a", "a1", "b"]}}


def test_the_shipped_file_names_its_generator_and_sources() -> None:
    shipped = orjson.loads(SHIPPED.read_bytes())
    assert "scripts/fhir_required_codes.py" in shipped["about"]
    assert shipped["sources"] == {v: [p for p, _ in packages] for v, packages in generator.SOURCES.items()}
    assert set(shipped["versions"]) == {"4.0", "5.0"}
    for part in shipped["versions"].values():
        assert set(part["bindings"]) == set(generator.KINDS)
        used = {b["valueSet"] for bound in part["bindings"].values() for b in bound}
        assert used == set(part["valueSets"])


def _sources() -> Path | None:
    """Where the official definitions are here, if anywhere: ``$CARELEDGER_FHIR_DEFINITIONS`` or
    ``.cache/fhir-definitions`` (the package tarballs: ``make fhir-definitions``, part of ``make test``),
    or ``node_modules`` (the packages installed)."""
    candidates = (os.environ.get("CARELEDGER_FHIR_DEFINITIONS"), paths.REPO / ".cache" / "fhir-definitions",
                  paths.REPO / "node_modules")  # fmt: skip
    for candidate in candidates:
        if candidate is None:
            continue
        folder = Path(candidate)
        packages = [p for packages in generator.SOURCES.values() for p, _ in packages]
        if all(
            (folder / generator._tarball_name(p)).is_file() or (folder / p.rpartition("@")[0]).is_dir()
            for p in packages
        ):
            return folder
    return None


def test_the_shipped_file_is_what_the_generator_makes_from_the_sources() -> None:
    sources = _sources()
    if sources is None:
        unavailable("the FHIR definition packages are not here: `make fhir-definitions`")
    assert generator.render(generator.generate(sources)) == SHIPPED.read_text(encoding="utf-8")
