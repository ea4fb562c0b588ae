"""The bytes a chained row is hashed by, pinned: a chain already written is verified by
recomputing them, so however ``chain.canonical`` is written, it must give these bytes
for ever (a new form gets a new name, as ``FORM`` did)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from schemas.enums import Role
from sync.platform import chain
from sync.platform.spliced import Spliced

KEY = b"k" * 32


def _version(**values: Any) -> dict[str, Any]:
    return {
        "entity": "patrol",
        "record_id": uuid.UUID("0b8a5c2e-6f1d-4e8a-9c3b-2d7e5f4a1b6c"),
        "version": 3,
        "op": "update",
        "fields": {
            "objective": "Río Mayo «alto»",
            "points": Spliced([{"alt_m": 812.5, "lat": -5.8, "lon": -77.3, "t": "2026-03-09Z"}]),
        },
        "changed": ["objective"],
        "user_id": None,
        "device_id": uuid.UUID("9F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0"),
        "change_id": uuid.UUID("12345678-1234-5678-9abc-def012345678"),
        "reason": None,
        # An offset is written in UTC; a time without one is taken as UTC.
        "recorded_at": datetime(2026, 3, 9, 7, 34, 2, tzinfo=timezone(timedelta(hours=-5))),
        "created_at": datetime(2026, 3, 9, 12, 40),  # noqa: DTZ001 (what a naive time gives)
        "chain_tx": uuid.UUID("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"),
        "chain_hash": "left out",
        **values,
    }


VERSION = (
    b'{"chain_tx":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",'
    b'"change_id":"12345678-1234-5678-9abc-def012345678","changed":["objective"],'
    b'"created_at":"2026-03-09T12:40:00.000000+00:00",'
    b'"device_id":"9f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","entity":"patrol",'
    b'"fields":{"objective":"R\xc3\xado Mayo \xc2\xabalto\xc2\xbb",'
    b'"points":[{"alt_m":812.5,"lat":-5.8,"lon":-77.3,"t":"2026-03-09Z"}]},'
    b'"op":"update","record_id":"0b8a5c2e-6f1d-4e8a-9c3b-2d7e5f4a1b6c",'
    b'"recorded_at":"2026-03-09T12:34:02.000000+00:00","version":3}'
)


def test_a_version_is_hashed_by_these_bytes() -> None:
    table = chain.TABLES["record_version"]

    assert chain.canonical(table, _version(), form=chain.FORM_1) == VERSION
    assert chain.canonical(table, _version(), key=lambda: KEY) == VERSION  # nothing personal
    assert chain.row_hash(table, _version(), key=lambda: KEY) == (
        "458d494ccc9ce71a63ac1d54b14f2814662c5d7c93330fc412b11b632684e055"
    )


def test_an_integer_beyond_64_bits_is_written_exactly() -> None:
    fields = {"objective": "x", "trees": 2**70}
    written = chain.canonical(chain.TABLES["record_version"], _version(fields=fields))

    assert b'"fields":{"objective":"x","trees":1180591620717411303424}' in written


def test_a_person_s_version_is_hashed_with_pseudonyms() -> None:
    fields = {"given_names": "María", "paternal_surname": "Quispe", "phone": "+51 987 654 321"}
    written = chain.canonical(
        chain.TABLES["record_version"], _version(entity="person", fields=fields), key=lambda: KEY
    )

    assert b'"fields":{},' in written
    assert b"Mar\xc3\xada" not in written
    assert b"987" not in written
    assert written.endswith(
        b'"pseudonyms":{'
        b'"given_names":"5c72949ba11497b7006ab7c369222f6da1832a33277c8d1db5779704cb2bba9d",'
        b'"paternal_surname":"577aaf96aa11e5ae9a19b50257c8707912fee224ea2f6531e167ffd380ce022a",'
        b'"phone":"418541c6a993fd4b8ed2eadfea996514c26a7125052d5825262b4546fd1bd5cc"},'
        b'"record_id":"0b8a5c2e-6f1d-4e8a-9c3b-2d7e5f4a1b6c",'
        b'"recorded_at":"2026-03-09T12:34:02.000000+00:00","version":3}'
    )


def test_each_key_gives_its_own_pseudonyms() -> None:
    """A pseudonym is the value's HMAC-SHA256 under the key given: the keyed HMAC kept
    for one key (and copied for each value) never answers for another."""
    scope = "person.given_names\n0b8a5c2e-6f1d-4e8a-9c3b-2d7e5f4a1b6c"
    message = scope.encode() + b'\n{"v":"Mar\xc3\xada"}'
    other = b"j" * 32
    for key in (KEY, other, KEY, other):
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        assert chain.pseudonym(key, scope, "María") == expected
    assert chain.pseudonym(KEY, scope, "María") != chain.pseudonym(other, scope, "María")


def test_a_review_with_a_date_and_an_enum_is_hashed_by_these_bytes() -> None:
    review = {
        "id": uuid.UUID("0b8a5c2e-6f1d-4e8a-9c3b-2d7e5f4a1b6c"),
        "patrol_id": uuid.UUID("9f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"),
        "version": 2,
        "decision": Role.ranger_lead,
        "comment": None,
        "reviewed_at": date(2026, 3, 9),
        "reviewed_by": None,
        "chain_tx": None,
    }

    assert chain.canonical(chain.TABLES["patrol_review"], review) == (
        b'{"decision":"ranger_lead","id":"0b8a5c2e-6f1d-4e8a-9c3b-2d7e5f4a1b6c",'
        b'"patrol_id":"9f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","reviewed_at":"2026-03-09",'
        b'"version":2}'
    )
