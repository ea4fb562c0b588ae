"""What the workspace asks the database for is asked in one order: ``in_order`` sorts
ids as ``sorted`` does, by their number read in C rather than ``UUID.__lt__``."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from sync.engine.workspace import in_order


@given(st.lists(st.uuids(), max_size=60) | st.sets(st.uuids(), max_size=60))
def test_ids_come_in_the_order_sorted_gives_them(ids: list[uuid.UUID] | set[uuid.UUID]) -> None:
    assert in_order(ids) == sorted(ids)
