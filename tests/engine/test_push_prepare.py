"""What ``sync.engine.prepare.prepare`` works out before the transaction equals what the engine
would work out itself: the content hash of a change must never depend on the path."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from schemas.sync import Change, PushRequest
from sync.catalog import CATALOG
from sync.engine.prepare import canonical, content_hash, document_of, prepare, same_content

# What a push body can hold: JSON as the route reads it (no NaN, no infinities).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _change(fields: dict[str, Any], recorded_at: str | None) -> Change:
    return Change.model_validate(
        {
            "change_id": str(uuid.uuid4()),
            "seq": 1,
            "entity": "patrol",
            "id": str(uuid.uuid4()),
            "op": "create",
            "recorded_at": recorded_at,
            "fields": fields,
        }
    )


@given(
    fields=st.dictionaries(st.text(), json_values, max_size=6),
    recorded_at=st.sampled_from([None, "2026-11-02T09:31:07-05:00", "2026-11-02T14:31:07Z"]),
)
def test_the_document_of_a_change_is_its_json_dump(
    fields: dict[str, Any], recorded_at: str | None
) -> None:
    change = _change(fields, recorded_at)

    assert document_of(change) == change.model_dump(mode="json")
    assert canonical(document_of(change)) == canonical(change.model_dump(mode="json"))


def test_a_change_id_sent_twice_is_prepared_for_its_first_object_only() -> None:
    first = _change({"objective": "a"}, None)
    second = first.model_copy(update={"seq": 2, "fields": {"objective": "b"}})
    batch = PushRequest.model_validate(
        {"protocol": 1, "device_id": str(uuid.uuid4()), "changes": [first, second]}
    )

    prepared = prepare(batch, CATALOG)

    assert list(prepared) == [first.change_id]
    assert prepared[first.change_id].change is batch.changes[0]
    assert prepared[first.change_id].digest == content_hash(canonical(document_of(first)))


@given(fields=st.dictionaries(st.text(), json_values, max_size=6))
def test_a_change_hashed_by_any_form_is_known_again_and_no_other(fields: dict[str, Any]) -> None:
    """Hashes name their form: a change stored before the canonical form changed (the
    standard library's JSON, ASCII-escaped) is still its own replay, and only its own."""
    change = _change(fields, None)
    document = document_of(change)
    legacy = hashlib.sha256(
        json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    digest = content_hash(canonical(document))
    other = document_of(_change({**fields, "objective": "otra"}, None))

    assert len(digest) == 64
    assert digest.startswith("2:")
    assert same_content(digest, document, digest)
    assert same_content(legacy, document, digest)
    assert not same_content(legacy, other, content_hash(canonical(other)))
    assert not same_content(digest, other, content_hash(canonical(other)))
