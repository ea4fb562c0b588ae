"""The audit chain: what makes the history of the field tamper-evident.

Every row of a chained table (``Chained``: the versions of the field records, the
patrol reviews, the merges of people, the log of personal data taken out) carries
the SHA-256 of its own content (``chain_hash``) and the id of the transaction that
wrote it (``chain_tx``). Each transaction that writes such rows appends one
``AuditBlock`` when it commits, numbered in commit order: its hash covers the
previous block's hash and the hashes of all its rows. Editing, deleting or moving a
row, or a block, behind the service's back breaks the chain from there on
(``sync.platform.chain``; docs/audit.md).
"""

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from schemas.types import UTCDateTime


class Chained(SQLModel):
    """The columns a chained table adds to its own."""

    chain_tx: uuid.UUID | None = Field(default=None, index=True)
    chain_hash: str | None = Field(default=None, sa_type=sa.String(64))


class AuditBlock(SQLModel, table=True):
    """One committed transaction's link in the chain."""

    __tablename__ = "audit_block"

    number: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    tx: uuid.UUID = Field(unique=True)
    entries: int
    prev_hash: str = Field(sa_type=sa.String(64))
    hash: str = Field(sa_type=sa.String(64))
    sealed_at: datetime = Field(sa_type=UTCDateTime)
