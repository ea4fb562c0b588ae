"""The files that prove a patrol: the photos of the patrol and of its observations, as
the office sees them (held yet or still on the tablet) and where to download them.

Which records name a file is read from ``attachment_link`` (kept by the change log),
so a page of the queue asks two statements for all its patrols, not one per row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from schemas import AttachmentLink, Observation, Patrol
from schemas.attachments import AttachmentRead, attachment_url
from sync.engine.files import held
from sync.patrols.entities import OBSERVATION, PATROL


@dataclass(frozen=True)
class Tally:
    """How many files a patrol and its observations name, and how many are not held."""

    named: int = 0
    missing: int = 0


def tallies(session: Session, patrols: Sequence[Patrol]) -> dict[uuid.UUID, Tally]:
    """The files each of ``patrols`` and its live observations name, counted."""
    ids = [patrol.id for patrol in patrols]
    if not ids:
        return {}
    named: dict[uuid.UUID, set[str]] = {patrol_id: set() for patrol_id in ids}
    own = select(AttachmentLink.record_id, AttachmentLink.sha256).where(
        col(AttachmentLink.entity) == PATROL.name, col(AttachmentLink.record_id).in_(ids)
    )
    of_observations = (
        select(Observation.patrol_id, AttachmentLink.sha256)
        .join(
            AttachmentLink,
            sa.and_(
                col(AttachmentLink.entity) == OBSERVATION.name,
                col(AttachmentLink.record_id) == col(Observation.id),
            ),
        )
        .where(col(Observation.patrol_id).in_(ids), col(Observation.deleted_at).is_(None))
    )
    for patrol_id, sha256 in [*session.execute(own), *session.execute(of_observations)]:
        named[patrol_id].add(sha256)
    present = held(session, (sha for hashes in named.values() for sha in hashes))
    return {
        patrol_id: Tally(named=len(hashes), missing=len(hashes - present))
        for patrol_id, hashes in named.items()
    }


def reads(refs: Iterable[Mapping[str, Any]], present: set[str]) -> list[AttachmentRead]:
    """A record's files as the office reads them."""
    return [AttachmentRead.of(ref, held=ref["sha256"] in present) for ref in refs]


def urls(refs: Iterable[Mapping[str, Any]], *, base: str) -> list[str]:
    """Where a record's files are downloaded, as whole URLs (for exports)."""
    return [attachment_url(str(ref["sha256"]), base=base) for ref in refs]
