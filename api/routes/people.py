"""The families' registry: people and households, duplicates and merges, and the log of
personal data taken out.

Lists answer JSON, or a CSV file with ``format=csv``. Personal data (document numbers,
phones, home locations) is shown to admins, coordinators and extension workers when
``pii`` is true (the default), never to rangers; each list or file carrying it is
logged before it is sent.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.answers import attachment, json_or_csv
from api.body import JSONRoute
from api.deps import Admin, EngineDep, OfficeStaff, PeopleReader, SessionDep, SettingsDep
from api.errors import problems
from schemas.queries import Format
from schemas.registry import (
    AccessLogQuery,
    AccessPage,
    DetailQuery,
    DuplicatePage,
    DuplicateQuery,
    HouseholdDetail,
    HouseholdPage,
    HouseholdQuery,
    MergeRead,
    MergeRequest,
    PeopleQuery,
    PersonDetail,
    PersonPage,
    RegistryQuery,
)
from sync.accounts import scope
from sync.accounts.principal import Principal
from sync.catalog import CATALOG
from sync.people import duplicates, privacy
from sync.people import registry as people

router = APIRouter(route_class=JSONRoute, tags=["families"])


def _shown(request: Request, engine: Any, principal: Principal, query: RegistryQuery) -> bool:
    """Whether the answer carries personal data; if it does, that is logged first."""
    shown = privacy.shows_personal_data(principal, asked=query.pii)
    if shown:
        privacy.log_access(
            engine,
            principal=principal,
            path=request.url.path,
            format=str(query.format),
            filters=query.model_dump(exclude={"pii", "format"}, exclude_defaults=True),
        )
    return shown


@router.get("/people", response_model=PersonPage, responses=json_or_csv())
def list_people(
    query: Annotated[PeopleQuery, Query()],
    request: Request,
    principal: PeopleReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """People in the caller's communities, by name; ``q`` searches names ignoring
    accents and case; merged records are left out unless ``status`` asks for them."""
    scope.check_places(
        session, principal, community_id=query.community_id, sector_id=query.sector_id
    )
    shown = _shown(request, engine, principal, query)
    if query.format is Format.csv:
        pieces = people.people_csv(
            engine, principal=principal, query=query, shown=shown, zone=settings.zone
        )
        return attachment(pieces, "people.csv")
    return people.list_people(session, principal=principal, query=query, shown=shown)


@router.get("/people/duplicates")
def list_duplicates(
    query: Annotated[DuplicateQuery, Query()], principal: PeopleReader, session: SessionDep
) -> DuplicatePage:
    """Likely duplicate people, each pair with its reasons: the same document, or the
    same name (accents and case folded), birth year and community."""
    return duplicates.find_duplicates(session, principal=principal, query=query)


@router.post("/people/merge", responses=problems(409))
def merge_people(body: MergeRequest, principal: OfficeStaff, session: SessionDep) -> MergeRead:
    """Fold ``merge_id`` into ``keep_id``: the merged person is marked ``merged_into``,
    attendance, households and agreements follow as new versions devices pull, an
    attendance that would be double is made single, and the merge is logged.
    Merging a person into themselves or an already-merged person is a 409."""
    return duplicates.merge(session, catalog=CATALOG, principal=principal, request=body)


@router.get("/people/{person_id}")
def get_person(
    person_id: uuid.UUID,
    query: Annotated[DetailQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
) -> PersonDetail:
    """One person: household, agreements signed, people merged into them, and every
    version (who, which device, when, what changed)."""
    shown = privacy.shows_personal_data(principal, asked=query.pii)
    return people.person_detail(session, principal=principal, person_id=person_id, shown=shown)


@router.get("/households", response_model=HouseholdPage, responses=json_or_csv())
def list_households(
    query: Annotated[HouseholdQuery, Query()],
    request: Request,
    principal: PeopleReader,
    session: SessionDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> Any:
    """Households in the caller's communities; ``q`` searches the head's name (accents
    and case ignored) and the household code."""
    scope.check_places(
        session, principal, community_id=query.community_id, sector_id=query.sector_id
    )
    shown = _shown(request, engine, principal, query)
    if query.format is Format.csv:
        pieces = people.households_csv(
            engine, principal=principal, query=query, shown=shown, zone=settings.zone
        )
        return attachment(pieces, "households.csv")
    return people.list_households(session, principal=principal, query=query, shown=shown)


@router.get("/households/{household_id}")
def get_household(
    household_id: uuid.UUID,
    query: Annotated[DetailQuery, Query()],
    principal: PeopleReader,
    session: SessionDep,
) -> HouseholdDetail:
    """One household: members, agreements, and every version."""
    shown = privacy.shows_personal_data(principal, asked=query.pii)
    return people.household_detail(
        session, principal=principal, household_id=household_id, shown=shown
    )


@router.get("/personal-data-log")
def personal_data_log(
    query: Annotated[AccessLogQuery, Query()], _admin: Admin, session: SessionDep
) -> AccessPage:
    """Who took personal data out, in which list or file, with which filters; newest first."""
    return privacy.access_log(session, query=query)
