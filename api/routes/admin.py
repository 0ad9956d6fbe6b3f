"""Managing organisations and apps (role ``admin``). API keys are shown once, at creation. An app's
SMART client keys (its public JWKS, :mod:`ledger.oauth`) are registered and replaced here."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from api.declared_errors import raises
from api.deps import Admin, ServiceDep
from api.limits import LedgerRoute
from api.schemas.admin import (
    AppCreatedOut,
    AppIn,
    AppOut,
    ClientOut,
    JwksIn,
    OrganisationIn,
    OrganisationOut,
    PostalAddressIn,
    app_out,
    client_out,
    organisation_out,
)
from api.schemas.common import IdPath
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    ConflictError,
    ConfusableNameError,
    DuplicateError,
    InputError,
    InvalidNameError,
    InvalidTextError,
    NotFoundError,
    StorageFullError,
    StoreUnavailableError,
)
from ledger.oauth.clients import register_client_keys, registered_client
from ledger.store.apps import Role, create_app, list_apps, list_organisations, revoke_app

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=LedgerRoute)
WRITES = (StoreUnavailableError, StorageFullError)


@router.post(
    "/organisations",
    status_code=201,
    response_model=OrganisationOut,
    summary="Create an organisation with its own chain account (or return the one of that name)",
)
@raises(
    InvalidNameError, InvalidTextError, DuplicateError, ConfusableNameError, ChainUnavailableError, ChainError, *WRITES
)
def create_organisation(body: OrganisationIn, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """The organisation's key is generated and kept encrypted in the keystore; it is never returned.
    An existing organisation of that name is returned as it is (its postal address unchanged)."""
    address = body.postal_address.to_address() if body.postal_address is not None else None
    return organisation_out(service.create_organisation(body.name, emergency=body.emergency, postal_address=address))


@router.put(
    "/organisations/{organisation_id}/postal-address",
    response_model=OrganisationOut,
    summary="Register or replace an organisation's postal address",
)
@raises(InvalidTextError, NotFoundError, *WRITES)
def put_postal_address(organisation_id: IdPath, body: PostalAddressIn, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """Patients' accountings of disclosures name the organisation by it from now on (within seconds
    on every replica); it is kept off chain."""
    return organisation_out(service.set_postal_address(organisation_id, body.to_address()))


@router.delete(
    "/organisations/{organisation_id}/postal-address",
    response_model=OrganisationOut,
    summary="Remove an organisation's postal address",
)
@raises(NotFoundError, *WRITES)
def delete_postal_address(organisation_id: IdPath, _: Admin, service: ServiceDep) -> dict[str, Any]:
    return organisation_out(service.set_postal_address(organisation_id, None))


@router.get("/organisations", response_model=list[OrganisationOut], summary="List organisations")
def organisations(_: Admin, service: ServiceDep) -> list[dict[str, Any]]:
    return [organisation_out(o) for o in list_organisations(service.db.conn)]


@router.post(
    "/apps",
    status_code=201,
    response_model=AppCreatedOut,
    summary="Create an app; its API key is in this answer only",
)
@raises(NotFoundError, ConflictError, *WRITES)
def new_app(body: AppIn, _: Admin, service: ServiceDep) -> dict[str, Any]:
    if Role.EMERGENCY in body.roles and not service.organisation(body.organisation_id).emergency:
        raise ConflictError(
            "the emergency role needs an organisation with break-glass rights",
            field="roles",
            organisation_id=body.organisation_id,
        )
    created, api_key = create_app(service.db.conn, body.organisation_id, body.name, set(body.roles))
    return {**app_out(created), "apiKey": api_key}


@router.get("/apps", response_model=list[AppOut], summary="List apps (without keys)")
def apps(_: Admin, service: ServiceDep) -> list[dict[str, Any]]:
    return [app_out(a) for a in list_apps(service.db.conn)]


@router.delete("/apps/{app_id}", response_model=AppOut, summary="Revoke an app's API key")
@raises(NotFoundError, *WRITES)
def delete_app(app_id: IdPath, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """Its SMART access tokens stop working with the key, and its client can get no new ones."""
    revoked = revoke_app(service.db.conn, app_id)
    service.app_keys.clear()  # the key stops working now in this process (within the cache TTL elsewhere)
    service.access_tokens.clear()  # and so do its access tokens
    return app_out(revoked)


@router.put(
    "/apps/{app_id}/jwks",
    response_model=ClientOut,
    summary="Register or replace an app's SMART client keys (a JWKS of public keys)",
    responses={400: {"description": "a key is not an RS384/ES384 public key with a kid, or holds private material"}},
)
@raises(InputError, NotFoundError, ConflictError, *WRITES)
def put_client_keys(app_id: IdPath, body: JwksIn, _: Admin, service: ServiceDep) -> dict[str, Any]:
    """The app becomes a SMART Backend Services client with a `clientId` (kept when the keys are
    replaced). Replacing the keys revokes the app's access tokens."""
    client = register_client_keys(service.db.conn, app_id, body.model_dump(), int(time.time()))
    service.access_tokens.clear()
    return client_out(client)


@router.get(
    "/apps/{app_id}/jwks",
    response_model=ClientOut,
    summary="An app's SMART client: its clientId, public keys and the scopes it may ask",
)
@raises(NotFoundError)
def client_keys(app_id: IdPath, _: Admin, service: ServiceDep) -> dict[str, Any]:
    return client_out(registered_client(service.db.conn, app_id))
