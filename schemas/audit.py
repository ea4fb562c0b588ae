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
from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from schemas.types import UTCDateTime

PSEUDONYMISED: dict[str, frozenset[str]] = {
    "person": frozenset(
        {"given_names", "paternal_surname", "maternal_surname", "doc_number", "phone"}
    ),
    "household": frozenset({"location"}),
    "training_session": frozenset({"facilitators"}),
    "personal_data_access": frozenset({"filters"}),
}
"""What of a chained row is hashed as a pseudonym, never as itself, so that a verifier
outside the office can check the hash without seeing it: the personal data of the
field records (names, document numbers, phones, home locations, and facilitators, who
may be named) and what was searched for when personal data was taken out."""

LINKED = frozenset({("person", "doc_number"), ("person", "phone")})
"""Pseudonyms that are the same wherever the value is, so that a verifier can see two
people registered with one document number. Every other pseudonym is also keyed by
its record, so that one common surname is not one pseudonym to count."""


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
    # How its rows and itself are hashed (``sync.platform.chain.FORMS``).
    form: str = Field(
        default="fieldsync-audit-2",
        sa_type=sa.String(32),
        sa_column_kwargs={"server_default": "fieldsync-audit-1"},
    )
    entries: int
    prev_hash: str = Field(sa_type=sa.String(64))
    hash: str = Field(sa_type=sa.String(64))
    sealed_at: datetime = Field(sa_type=UTCDateTime)


class AuditAnchor(SQLModel, table=True):
    """The chain's head on a day, signed with the office's Ed25519 key
    (``fieldsync audit anchor``): a chain rewritten from before it no longer reaches
    the hash the office signed and sent out."""

    __tablename__ = "audit_anchor"

    id: int | None = Field(default=None, primary_key=True)
    block: int = Field(sa_type=sa.BigInteger)
    hash: str = Field(sa_type=sa.String(64))
    anchored_at: datetime = Field(sa_type=UTCDateTime)
    public_key: str = Field(sa_type=sa.String(64))
    signature: str = Field(sa_type=sa.String(128))


class AnchorRead(BaseModel):
    """An anchor as ``GET /audit/anchors`` answers it: what was signed, and by which key."""

    block: int = PydanticField(description="The number of the chain's last block then.")
    hash: str = PydanticField(description="That block's hash (SHA-256, hex).")
    anchored_at: datetime
    public_key: str = PydanticField(description="The Ed25519 public key, base64 (32 bytes).")
    signature: str = PydanticField(
        description="The Ed25519 signature (base64, 64 bytes) of the anchor's statement: "
        'the JSON {"anchored_at", "block", "form", "hash", "public_key"}, keys sorted, '
        'no spaces, "form" being "fieldsync-audit-1".'
    )
