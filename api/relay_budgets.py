"""The relayer's gas budgets: what patients (per client and per patient) and organisations' apps (per
app and overall) may spend through it. Shared by every route that relays a signed consent change:
``/v1/consents``, ``/v1/patient`` and the FHIR facade draw on the same budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from api.declared_errors import raises
from api.deps import Caller, RelayingApp
from api.patient_auth import PatientOrApp
from api.rate_limit import RateLimiter, app_limits, client_address
from ledger.consent.relay import Admit
from ledger.exceptions import PermissionDeniedError, RateLimitedError
from ledger.store.apps import Role

ORGANISATION_RELAYS_PER_APP = 120
ORGANISATION_RELAYS_OVERALL = 1_000
ORGANISATION_RELAY_WINDOW_SECONDS = 600.0


@dataclass(frozen=True)
class OrganisationRelayLimits:
    """The gas an organisation's apps may spend through the relayer: a budget per app, and one for all."""

    per_app: RateLimiter
    overall: RateLimiter

    def charge(self, caller: Caller) -> None:
        """Spend one relay of the app's budget and of the overall one."""
        self.per_app.take(str(caller.app.id))
        self.overall.take("all")

    @classmethod
    def default(cls) -> OrganisationRelayLimits:
        return cls(
            RateLimiter(ORGANISATION_RELAYS_PER_APP, ORGANISATION_RELAY_WINDOW_SECONDS, "app"),
            RateLimiter(ORGANISATION_RELAYS_OVERALL, ORGANISATION_RELAY_WINDOW_SECONDS, "relayer"),
        )


async def organisation_relay_limits(request: Request) -> OrganisationRelayLimits:
    """The app's budgets (made on first use; tests may set ``app.state.organisation_relay_limits``)."""
    return app_limits(request, "organisation_relay_limits", OrganisationRelayLimits.default)


@raises(RateLimitedError)
def budgeted(
    caller: RelayingApp, limits: Annotated[OrganisationRelayLimits, Depends(organisation_relay_limits)]
) -> Caller:
    """An app with the relayer role, charged one relay of its own budget and of the overall one."""
    limits.charge(caller)
    return caller


Budgeted = Annotated[Caller, Depends(budgeted)]


RELAYS_PER_IP = 30
CHALLENGES_PER_IP = 30
RELAYS_PER_PATIENT = 12
REVOCATIONS_PER_PATIENT = 12
RELAY_WINDOW_SECONDS = 600.0


@dataclass(frozen=True)
class RelayLimits:
    """The relayer's budgets: one per client IP (every attempt), and per patient one for grants and
    guardians and one for revocations (charged only once the signature held: nobody but the patient
    or a guardian spends them, and giving consent never uses up the budget for withdrawing it)."""

    per_ip: RateLimiter
    per_patient: RateLimiter
    revocations_per_patient: RateLimiter
    challenges_per_ip: RateLimiter = field(
        default_factory=lambda: RateLimiter(CHALLENGES_PER_IP, RELAY_WINDOW_SECONDS, "client")
    )

    @classmethod
    def default(cls) -> RelayLimits:
        return cls(
            RateLimiter(RELAYS_PER_IP, RELAY_WINDOW_SECONDS, "client"),
            RateLimiter(RELAYS_PER_PATIENT, RELAY_WINDOW_SECONDS, "patient"),
            RateLimiter(REVOCATIONS_PER_PATIENT, RELAY_WINDOW_SECONDS, "patient's revocations"),
        )


async def relay_limits(request: Request) -> RelayLimits:
    """The app's limits (made on first use; tests may set ``app.state.patient_relay_limits``)."""
    return app_limits(request, "patient_relay_limits", RelayLimits.default)


@raises(RateLimitedError)
def client_limited(request: Request, limits: Annotated[RelayLimits, Depends(relay_limits)]) -> RelayLimits:
    """Spend one of the client's relays (the peer's address; behind a proxy listed in
    ``trusted_proxies``, the client's address the proxy forwarded)."""
    limits.per_ip.take(client_address(request))
    return limits


ClientLimited = Annotated[RelayLimits, Depends(client_limited)]


OrganisationLimits = Annotated[OrganisationRelayLimits, Depends(organisation_relay_limits)]
PatientLimits = Annotated[RelayLimits, Depends(relay_limits)]


def admission(
    request: Request,
    who: PatientOrApp,
    organisations: OrganisationRelayLimits,
    patients: RelayLimits,
    *,
    revocation: bool,
) -> Admit | None:
    """Charge a relay to whoever asks for it, as the ``/v1`` routes do: an app needs the relayer role
    and spends its budgets now; a patient's session spends one of the client's relays now and, once
    the signature held (the returned ``Admit``), one of the patient's (grants and revocations apart),
    and may relay only the patient's own consents."""
    if who.caller is not None:
        who.caller.require(Role.RELAYER)
        organisations.charge(who.caller)
        return None
    patients.per_ip.take(client_address(request))
    own, budget = who.patient, patients.revocations_per_patient if revocation else patients.per_patient

    def admit(patient: str) -> None:
        if patient != own:
            raise PermissionDeniedError("this session belongs to another patient", patient=patient)
        budget.take(patient)

    return admit
