"""Families' conservation agreements, as coordinators and extension workers read them.

An ``active`` agreement past its ``valid_until`` reads as ``expired`` — today being
the local date where the work happens (``FIELDSYNC_TIMEZONE``). The list is JSON by
default, or with ``format=csv`` a CSV file (UTF-8 with a BOM) written as it is read.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.body import JSONRoute
from api.deps import EngineDep, SessionDep, SettingsDep, require
from api.routes.trainings import CSV_ANSWER, csv_file
from schemas.agreements import AgreementDetail, AgreementPage, AgreementQuery
from schemas.enums import Role
from schemas.queries import Format
from sync.accounts import scope
from sync.accounts.principal import Principal
from sync.people import agreements

router = APIRouter(route_class=JSONRoute, prefix="/agreements", tags=["agreements"])

# Families' records are the office's and the extension workers' (their communities).
Reader = Annotated[Principal, Depends(require(Role.admin, Role.coordinator, Role.extension_worker))]


@router.get("", response_model=AgreementPage, responses=CSV_ANSWER)
def list_agreements(
    query: Annotated[AgreementQuery, Query()],
    principal: Reader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """Agreements in the caller's communities, newest signed first, with the total.
    ``status`` is the status as it reads today; ``q`` searches the signatory's name
    (accents and case aside, every word) and the agreement's and household's codes;
    ``renewal_due_within=N`` lists the active agreements ending within N days that no
    agreement renews yet, the soonest first."""
    if query.format is Format.csv:
        scope.check_places(  # before streaming: a 404 cannot follow a 200
            session, principal, community_id=query.community_id, sector_id=query.sector_id
        )
        pieces = agreements.agreements_csv(
            engine,
            principal=principal,
            query=query,
            today=agreements.today(settings.zone),
            zone=settings.zone,
        )
        return csv_file(pieces, "agreements.csv")
    return agreements.list_agreements(
        session, principal=principal, query=query, today=agreements.today(settings.zone)
    )


@router.get("/{agreement_id}")
def get_agreement(
    agreement_id: uuid.UUID, principal: Reader, session: SessionDep, settings: SettingsDep
) -> AgreementDetail:
    """One agreement as it reads today, with its household, its signatory (names only),
    the agreement it renews, the one renewing it, and every version: who, which
    device, when, what changed. Out of the caller's communities: 404."""
    return agreements.agreement_detail(
        session,
        principal=principal,
        agreement_id=agreement_id,
        today=agreements.today(settings.zone),
    )
