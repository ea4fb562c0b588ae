"""Families' conservation agreements, as coordinators and extension workers read them.

An ``active`` agreement past its ``valid_until`` reads as ``expired`` — today being
the local date where the work happens (``FIELDSYNC_TIMEZONE``). The list is JSON by
default, or with ``format=csv`` a CSV file (UTF-8 with a BOM) written as it is read.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.answers import attachment, json_or_csv
from api.body import JSONRoute
from api.deps import EngineDep, PeopleReader, SessionDep, SettingsDep
from schemas.agreements import AgreementDetail, AgreementPage, AgreementQuery
from schemas.queries import Format
from sync.accounts import scope
from sync.people import agreements

router = APIRouter(route_class=JSONRoute, prefix="/agreements", tags=["agreements"])


@router.get("", response_model=AgreementPage, responses=json_or_csv())
def list_agreements(
    query: Annotated[AgreementQuery, Query()],
    principal: PeopleReader,
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
        return attachment(pieces, "agreements.csv")
    return agreements.list_agreements(
        session, principal=principal, query=query, today=agreements.today(settings.zone)
    )


@router.get("/{agreement_id}")
def get_agreement(
    agreement_id: uuid.UUID, principal: PeopleReader, session: SessionDep, settings: SettingsDep
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
