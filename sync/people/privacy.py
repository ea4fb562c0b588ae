"""Personal data (Peru's law 29733 on personal data: consent, least access).

A person's document number and phone and a household's home location are personal
data. They are shown to admins, coordinators and extension workers (who register
the families) when asked, never to rangers or ranger leads; every list or file that
carries them out is logged (who, when, which route and filters), and admins read
the log. The log is written in its own transaction, before the answer is sent: a
download that fails halfway was still asked for.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from schemas import User
from schemas.enums import Role
from schemas.registry import AccessLogQuery, AccessPage, AccessRead, PersonalDataAccess
from schemas.types import utcnow
from sync.accounts.principal import Principal
from sync.platform.database import transaction

PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "person": frozenset({"doc_number", "phone"}),
    "household": frozenset({"location"}),
}
"""The fields of each record that are personal data."""

MAY_SEE = frozenset({Role.admin, Role.coordinator, Role.extension_worker})


def shows_personal_data(principal: Principal, *, asked: bool) -> bool:
    """Whether an answer to ``principal`` carries personal data."""
    return asked and principal.role in MAY_SEE


def hidden_fields(entity: str, *, shown: bool) -> frozenset[str]:
    """The fields of ``entity`` to hide from an answer that does not show personal data."""
    return frozenset() if shown else PERSONAL_FIELDS.get(entity, frozenset())


def log_access(
    engine: Engine, *, principal: Principal, path: str, format: str, filters: dict[str, Any]
) -> None:
    """Record that ``principal`` took personal data out (its own, committed transaction)."""
    with transaction(engine) as session:
        session.add(
            PersonalDataAccess(
                id=uuid.uuid4(),
                user_id=principal.user_id,
                at=utcnow(),
                path=path,
                format=format,
                filters={k: str(v) for k, v in filters.items() if v is not None},
            )
        )


def access_log(session: Session, *, query: AccessLogQuery) -> AccessPage:
    """Who took personal data out, newest first (for admins)."""
    matching = select(PersonalDataAccess, User.username).outerjoin(
        User, col(User.id) == col(PersonalDataAccess.user_id)
    )
    if query.user_id is not None:
        matching = matching.where(PersonalDataAccess.user_id == query.user_id)
    total = session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    rows = session.exec(
        matching.order_by(col(PersonalDataAccess.at).desc(), col(PersonalDataAccess.id))
        .offset(query.offset)
        .limit(query.limit)
    )
    return AccessPage(
        items=[
            AccessRead(
                id=access.id,
                user_id=access.user_id,
                username=username,
                at=access.at,
                path=access.path,
                format=access.format,
                filters=access.filters,
            )
            for access, username in rows
        ],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )
