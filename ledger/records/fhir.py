"""FHIR validation of record documents, with the ``fhir.resources`` models (FHIR R5).

A document that names a ``resourceType`` claims to be FHIR and is checked against that resource's
model before it is registered: a record whose digest is anchored should at least be a well-formed
resource. (The digest is still taken over the document as sent, in RFC 8785 canonical form.)
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import ValidationError

from ledger.exceptions import InvalidFhirError


@cache
def _model(resource_type: str) -> Any:
    from fhir.resources import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def validate_fhir(document: dict[str, Any]) -> None:
    """Raise :class:`InvalidFhirError` unless ``document`` is a valid FHIR R5 resource."""
    resource_type = document.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidFhirError("resourceType must be a string", field="resourceType")
    try:
        model = _model(resource_type)
    except (ValueError, KeyError) as err:
        raise InvalidFhirError(f"unknown FHIR resource type {resource_type!r}", field="resourceType") from err
    try:
        model.model_validate(document)
    except ValidationError as err:
        problems = [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in err.errors()[:20]]
        raise InvalidFhirError(
            f"not a valid FHIR {resource_type}", resourceType=resource_type, errors=problems
        ) from err
