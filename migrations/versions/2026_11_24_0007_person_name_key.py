"""A person's full name folded (no accents, lower case) in ``person.name_key``, for
search that ignores accents and case and for the duplicate finder, on SQLite and
PostgreSQL alike (no ``unaccent`` extension needed). People already held are
folded here; push keeps it from then on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from schemas.text import name_key

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.add_column(
        "person",
        sa.Column("name_key", sa.String(length=620), server_default="", nullable=False),
    )
    op.create_index(op.f("ix_person_name_key"), "person", ["name_key"], unique=False)
    person = sa.table(
        "person",
        sa.column("id", sa.Uuid()),
        sa.column("given_names"),
        sa.column("paternal_surname"),
        sa.column("maternal_surname"),
        sa.column("name_key"),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            person.c.id, person.c.given_names, person.c.paternal_surname, person.c.maternal_surname
        )
    ).all()
    update = (
        sa.update(person)
        .where(person.c.id == sa.bindparam("_id"))
        .values(name_key=sa.bindparam("_key"))
    )
    for start in range(0, len(rows), BATCH):
        connection.execute(
            update,
            [
                {"_id": row.id, "_key": name_key(row[1], row[2], row[3])}
                for row in rows[start : start + BATCH]
            ],
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_person_name_key"), table_name="person")
    with op.batch_alter_table("person") as batch:
        batch.drop_column("name_key")
