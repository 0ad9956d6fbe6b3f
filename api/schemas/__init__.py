"""Request and response bodies, one module per feature; :mod:`~api.schemas.common` holds the base
(camelCase on the wire, unknown fields refused), the shared field types and the examples at /docs."""
