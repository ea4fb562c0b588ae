"""Who may read a file, and what a device still owes.

A file is read by whoever may see a live record that names it, as they would see
that record in a pull (a ranger lead the patrols of their sectors, an extension
worker the households of their communities, a coordinator everything), and by
whoever uploaded it. Anyone else is told it does not exist (``404``), so that a hash
cannot be used to learn what the service holds.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from schemas import Attachment, AttachmentLink, AttachmentOwed, SyncEntry
from schemas.attachments import MissingAttachment, MissingAttachmentPage
from schemas.queries import Paging
from sync.accounts.principal import Principal
from sync.engine import files
from sync.engine.pull import current_scope, visible
from sync.platform.errors import NotFound


def readable(session: Session, *, principal: Principal, sha256: str) -> Attachment:
    """The held file ``sha256``, if ``principal`` may read it; else ``NotFound``."""
    held = session.get(Attachment, sha256)
    if held is None:
        raise NotFound("no such attachment")
    if held.uploaded_by == principal.user_id:
        return held
    named_by_a_visible_record = (
        select(1)
        .select_from(AttachmentLink)
        .join(
            SyncEntry,
            sa.and_(
                col(SyncEntry.entity) == col(AttachmentLink.entity),
                col(SyncEntry.record_id) == col(AttachmentLink.record_id),
            ),
        )
        .where(
            col(AttachmentLink.sha256) == sha256,
            col(SyncEntry.deleted).is_(False),
            visible(current_scope(session, principal)),
        )
        .limit(1)
    )
    if session.exec(named_by_a_visible_record).first() is None:
        raise NotFound("no such attachment")
    return held


def _still_owed(device_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    return [col(AttachmentOwed.device_id) == device_id, files.still_owed()]


def owed_by(session: Session, *, device_id: uuid.UUID, paging: Paging) -> MissingAttachmentPage:
    """The files ``device_id`` named in its changes and the server still lacks, the
    longest owed first."""
    where = _still_owed(device_id)
    total = session.scalar(select(func.count()).select_from(AttachmentOwed).where(*where)) or 0
    rows = session.exec(
        select(AttachmentOwed)
        .where(*where)
        .order_by(col(AttachmentOwed.named_at), col(AttachmentOwed.sha256))
        .offset(paging.offset)
        .limit(paging.limit)
    ).all()
    return MissingAttachmentPage(
        items=[MissingAttachment.model_validate(row, from_attributes=True) for row in rows],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )
