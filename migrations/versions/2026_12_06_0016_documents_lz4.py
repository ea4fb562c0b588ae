"""The documents every push writes, made cheaper for PostgreSQL to keep.

A pushed change is kept four times as JSON: the record's own columns, its version
(``record_version.fields``), the change as sent (``sync_change.change``) and its pull
entry (``sync_entry.fields``). For a track segment of 100 points each is about 10 KB,
which PostgreSQL compresses out of line (TOAST). Measured by ``COPY`` of the bench's
segments (docs/performance.md), a segment cost PostgreSQL 345 µs as ``jsonb``
compressed by pglz, its default; 150 µs as ``json`` with pglz; 66 µs as ``json`` with
lz4 — that compression was most of PostgreSQL's CPU per pushed change.

So, on PostgreSQL:

- ``track_segment.points`` becomes ``json``: it is written and read whole, never
  queried inside, and ``jsonb`` parsed every number of every point into a ``numeric``;
- these columns, and ``points``, are compressed with lz4 where the server has it
  (PostgreSQL 14 and newer, built with lz4 as Debian's and the official images are).
  Values already stored keep their compression until rewritten; lz4 takes about a
  third more disk than pglz for these documents.

SQLite keeps JSON as text and compresses nothing: nothing to do there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENTS = [
    ("track_segment", "points"),
    ("record_version", "fields"),
    ("sync_change", "change"),
    ("sync_entry", "fields"),
]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE track_segment ALTER COLUMN points TYPE json USING points::text::json")
    _compress(bind, "lz4")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _compress(bind, "pglz")
    op.execute("ALTER TABLE track_segment ALTER COLUMN points TYPE jsonb USING points::jsonb")


def _compress(bind: sa.Connection, method: str) -> None:
    """Each document column compressed by ``method``, if this server has it."""
    if method not in compression_methods(bind):
        return
    for table, column in DOCUMENTS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def compression_methods(bind: sa.Connection) -> list[str]:
    """The compression methods this PostgreSQL server was built with."""
    methods = bind.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return list(methods or [])
