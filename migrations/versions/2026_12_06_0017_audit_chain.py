"""The audit chain (``sync.platform.chain``): ``audit_block``, and each chained table's
``chain_tx`` (indexed) and ``chain_hash``.

The rows already held — versions, reviews, merges, personal-data access — are chained
here into one first block, the genesis of this database's chain: each hashed from
what it holds now, in slices by key, so that no table is held whole in memory. The
chain proves what happened after this migration; what the rows held before it, it
takes on trust (docs/audit.md).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 20:00:00.000000
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHAINED = ("record_version", "patrol_review", "person_merge", "personal_data_access")
SLICE = 1000


def upgrade() -> None:
    op.create_table(
        "audit_block",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tx", sa.Uuid(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_audit_block")),
        sa.UniqueConstraint("tx", name=op.f("uq_audit_block_tx")),
    )
    genesis = "0" * 64
    with op.batch_alter_table("sync_clock") as batch:
        batch.add_column(
            sa.Column("chain_number", sa.BigInteger(), nullable=False, server_default="0")
        )
        for name in ("chain_hash", "chain_prev"):
            batch.add_column(
                sa.Column(name, sa.String(length=64), nullable=False, server_default=genesis)
            )
    for table in CHAINED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("chain_tx", sa.Uuid(), nullable=True))
            batch.add_column(sa.Column("chain_hash", sa.String(length=64), nullable=True))
            batch.create_index(batch.f(f"ix_{table}_chain_tx"), ["chain_tx"], unique=False)
    _genesis(op.get_bind())


def downgrade() -> None:
    for table in CHAINED:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(batch.f(f"ix_{table}_chain_tx"))
            batch.drop_column("chain_hash")
            batch.drop_column("chain_tx")
    op.drop_table("audit_block")
    with op.batch_alter_table("sync_clock") as batch:
        for name in ("chain_number", "chain_hash", "chain_prev"):
            batch.drop_column(name)


def _genesis(bind: sa.Connection) -> None:
    """The rows held before the chain, chained into block 1 (if there are any)."""
    from schemas.types import UTCDateTime
    from sync.platform import chain  # hashed as the service hashed them then: FORM_1

    tx = uuid.uuid4()
    hashes: list[str] = []
    for name in CHAINED:
        model = chain.TABLES[name]
        held = {column["name"] for column in sa.inspect(bind).get_columns(name)}
        columns = [column for column in model.columns if column.key in held]
        key = list(model.primary_key.columns)
        last: tuple[object, ...] | None = None
        while True:
            query = sa.select(*columns).order_by(*key).limit(SLICE)
            if last is not None:
                query = query.where(sa.tuple_(*key) > sa.tuple_(*(sa.literal(v) for v in last)))
            rows = [dict(row) for row in bind.execute(query).mappings()]
            if not rows:
                break
            updates = []
            for row in rows:
                row["chain_tx"] = tx
                digest = chain.row_hash(model, row, form=chain.FORM_1)
                hashes.append(digest)
                updates.append({**{f"k_{c.key}": row[c.key] for c in key}, "h": digest})
            bind.execute(
                sa.update(model)
                .where(*(c == sa.bindparam(f"k_{c.key}") for c in key))
                .values(chain_tx=tx, chain_hash=sa.bindparam("h")),
                updates,
            )
            last = tuple(rows[-1][c.key] for c in key)
    if hashes:
        blocks = sa.table(
            "audit_block",
            sa.column("number", sa.BigInteger()),
            sa.column("tx", sa.Uuid()),
            sa.column("entries", sa.Integer()),
            sa.column("prev_hash", sa.String()),
            sa.column("hash", sa.String()),
            sa.column("sealed_at", UTCDateTime()),
        )
        digest = chain.digest_of(hashes)
        head = chain.block_hash(1, chain.GENESIS, tx, len(hashes), digest, form=chain.FORM_1)
        bind.execute(
            sa.insert(blocks).values(
                number=1,
                tx=tx,
                entries=len(hashes),
                prev_hash=chain.GENESIS,
                hash=head,
                sealed_at=datetime.now(UTC),
            )
        )
        bind.execute(
            sa.text(
                "UPDATE sync_clock SET chain_number = 1, chain_hash = :head, chain_prev = :genesis"
            ),
            {"head": head, "genesis": chain.GENESIS},
        )
