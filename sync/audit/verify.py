"""Walking the audit chain on the live database, and saying where it breaks.

Block by block, in number order: the numbers run 1, 2, 3… with none missing; each
block names the hash of the one before; each block's own hash is what its number,
its predecessor's hash, its transaction, its count and the digest of its rows hash
to. The rows are hashed again from what they hold now: a row whose content no longer
matches its hash was edited; a block whose rows no longer digest to what it sealed
lost, gained or had rewritten a row. Rows outside any block were written behind the
service's back. Nothing here trusts a stored hash it can recompute.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schemas.audit import AnchorRead, AuditBlock
from sync.audit import anchors
from sync.audit.changed import what_changed
from sync.platform import chain

# Blocks are checked a group at a time, a group holding about this many rows: a
# push's block holds a few hundred versions of up to 10 KB each.
ROWS_A_GROUP = 2000


@dataclass(frozen=True)
class Break:
    """Where the chain breaks: the block, or the row, and what is wrong there."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class Report:
    blocks: int = 0
    entries: int = 0
    anchors: int = 0
    head: str = chain.GENESIS
    breaks: list[Break] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        if self.intact:
            return (
                f"the audit chain is intact: {self.blocks} blocks, {self.entries} entries, "
                f"{self.anchors} anchors met, head {self.head}"
            )
        lines = [f"the audit chain is BROKEN in {len(self.breaks)} places:"]
        lines += [f"  {problem}" for problem in self.breaks]
        return "\n".join(lines)


def verify(connection: Connection, kept_out: Iterable[AnchorRead] = ()) -> Report:
    """The whole chain, checked; and the anchors kept in the database and ``kept_out``
    (those of an anchor file kept out of the office): each signed by its key, each
    naming a block that still has the hash that was signed."""
    report = Report()
    signed = [*anchors.held(connection), *kept_out]
    anchored = {made.block for made in signed}
    found: dict[int, str] = {}
    key = chain.key_read(connection)
    expected_number, prev_hash = 1, chain.GENESIS
    for group in groups(connection):
        rows = rows_of(connection, [block.tx for block in group])
        for block in group:
            where = f"block {block.number}"
            if block.number != expected_number:
                report.breaks.append(
                    Break(where, f"block {expected_number} is missing (numbers jump to it)")
                )
            if block.prev_hash != prev_hash:
                report.breaks.append(
                    Break(where, "it does not follow the block before it (re-ordered or replaced)")
                )
            if block.form not in chain.FORMS:
                report.breaks.append(Break(where, "it names a form of hashing unknown here"))
            hashes = _check_rows(
                connection, rows.get(block.tx, []), report, key=key, form=block.form
            )
            if len(hashes) != block.entries:
                report.breaks.append(
                    Break(where, f"it sealed {block.entries} entries and {len(hashes)} are left")
                )
            rehashed = chain.block_hash(
                block.number,
                block.prev_hash,
                block.tx,
                len(hashes),
                chain.digest_of(hashes),
                form=block.form,
            )
            if rehashed != block.hash:
                report.breaks.append(
                    Break(
                        where,
                        "its entries do not hash to what it sealed (edited, added or removed)",
                    )
                )
            if block.number in anchored:
                found[block.number] = block.hash
            report.blocks += 1
            report.entries += len(hashes)
            expected_number, prev_hash = block.number + 1, block.hash
    report.head = prev_hash
    report.breaks += _head_kept(connection, expected_number - 1, prev_hash)
    report.breaks += _anchors_met(signed, found)
    report.anchors = len(signed)
    report.breaks += _unchained(connection)
    return report


def _anchors_met(signed: list[AnchorRead], found: dict[int, str]) -> list[Break]:
    breaks = []
    for made in signed:
        where = f"the anchor of {made.anchored_at:%Y-%m-%d %H:%M} UTC (block {made.block})"
        if not anchors.signed(made):
            breaks.append(Break(where, "its signature is not its key's: it was altered"))
        elif made.block not in found:
            breaks.append(Break(where, "that block is not in the chain any more"))
        elif found[made.block] != made.hash:
            rewritten = "that block no longer has the hash the office signed: the chain was "
            breaks.append(Break(where, rewritten + "rewritten from before it"))
    return breaks


def _head_kept(connection: Connection, number: int, hash_: str) -> list[Break]:
    """The head the sync clock's row keeps (advanced by the statement that sealed the
    last block) must be the last block: else blocks were taken off the end."""
    kept, kept_hash = chain.head(connection)
    if (kept, kept_hash) == (number, hash_):
        return []
    return [
        Break(
            f"block {kept}",
            f"the chain's head is block {kept} and the last block found is "
            f"{number}: blocks were removed from its end, or rewritten",
        )
    ]


def groups(connection: Connection) -> Iterator[list[Any]]:
    """The blocks in number order, a group at a time."""
    table = chain.table_of(AuditBlock)
    group: list[Any] = []
    held = 0
    for block in connection.execute(sa.select(table).order_by(table.c.number)):
        group.append(block)
        held += block.entries
        if held >= ROWS_A_GROUP:
            yield group
            group, held = [], 0
    if group:
        yield group


def rows_of(
    connection: Connection, txs: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, dict[str, Any]]]]:
    """The chained rows of these transactions, by transaction."""
    found: dict[uuid.UUID, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for name, table in chain.TABLES.items():
        query = sa.select(table).where(table.c.chain_tx.in_(txs))
        for row in connection.execute(query).mappings():
            found[row["chain_tx"]].append((name, dict(row)))
    return found


def _check_rows(
    connection: Connection,
    rows: list[tuple[str, dict[str, Any]]],
    report: Report,
    *,
    key: chain.Key,
    form: str,
) -> list[str]:
    """Each row's hash, recomputed as its block's ``form`` hashes it; a break for each
    whose content changed, saying what changed where the rest of the history tells."""
    hashes = []
    for name, values in rows:
        table = chain.TABLES[name]
        digest = chain.row_hash(table, values, key=key, form=form)
        if digest != values["chain_hash"]:
            what = "its content changed since it was chained"
            if name == "record_version":
                what += f" ({what_changed(connection, values)})"
            report.breaks.append(Break(_name(name, values), what))
        hashes.append(digest)
    return hashes


def _unchained(connection: Connection) -> list[Break]:
    """Rows in no block: with no chain id, or one no block names."""
    blocks = chain.table_of(AuditBlock)
    found = []
    for name, table in chain.TABLES.items():
        query = sa.select(table).where(
            sa.or_(table.c.chain_tx.is_(None), table.c.chain_tx.not_in(sa.select(blocks.c.tx)))
        )
        for row in connection.execute(query).mappings():
            found.append(
                Break(
                    _name(name, dict(row)),
                    "it is in no block of the chain (written behind the service's back)",
                )
            )
    return found


def _name(table: str, values: dict[str, Any]) -> str:
    """A row as a person would name it."""
    if table == "record_version":
        return f"{values['entity']} {values['record_id']} version {values['version']}"
    return f"{table.replace('_', ' ')} {values['id']}"
