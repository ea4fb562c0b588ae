"""The fast reader of track points (``schemas.track``) against pydantic's reading.

``read_points`` may only vouch for points it reads exactly as pydantic does; anything
else it must leave to pydantic. These tests hold it to that, on points tablets send
and on points made to find where the two readers part.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from api.body import parse_json
from schemas.records import TrackPoint, TrackSegmentFields, _in_utc
from schemas.sync import PushRequest
from schemas.track import PointsJSON, ReadPoints, read_points, read_sent_points
from sync.catalog import CATALOG
from sync.engine.prepare import prepare
from sync.platform.database import json_text
from sync.platform.spliced import Spliced
from tests.api.test_hardening import nested
from tests.sync_support import change

PATROL = "d28de1f2-7cd7-4819-988f-8fa5a2e1a6ff"
PYDANTIC = TypeAdapter(list[TrackPoint])


def by_pydantic(points: Any) -> list[dict[str, Any]] | None:
    """The points as pydantic alone reads them, in their JSON form; None if refused."""
    try:
        return _in_utc(PYDANTIC.validate_python(points))  # type: ignore[return-value]
    except (ValidationError, ValueError):
        return None


def point(**values: Any) -> dict[str, Any]:
    return {"t": "2026-03-09T07:34:02-05:00", "lat": -5.76, "lon": -77.22, **values}


def test_a_tablets_points_are_read_alike_in_utc_with_every_key() -> None:
    sent = [
        point(accuracy_m=8.4, alt_m=1093.2),
        point(t="2026-03-09T12:35:01.5Z"),
        point(t="2026-03-09T07:36:04.123456-05:00", lat=-5, lon=-77, accuracy_m=0),
    ]
    fast = read_points(sent)
    assert fast is not None
    assert fast[0] == {
        "t": "2026-03-09T12:34:02Z",
        "lat": -5.76,
        "lon": -77.22,
        "accuracy_m": 8.4,
        "alt_m": 1093.2,
    }
    assert fast[1]["t"] == "2026-03-09T12:35:01.500000Z"
    assert fast[1]["accuracy_m"] is None
    assert fast[1]["alt_m"] is None
    assert type(fast[2]["lat"]) is float
    assert read_points(sent) == by_pydantic(sent)


@pytest.mark.parametrize(
    "sent",
    [
        [],  # a segment has at least one point
        [point(t="2026-03-09T07:34:02")],  # no offset
        [point(t="2026-03-09T07:34:02.1234567Z")],  # pydantic truncates, msgspec rounds
        [point(t="0001-01-01T00:00:00+01:00")],  # before year 1 in UTC
        [point(t=datetime(2026, 3, 9, tzinfo=UTC))],  # not text: a server-side caller
        [point(lat="-5.76")],  # a number as text, which pydantic reads
        [point(lat=True)],
        [point(lat=91)],
        [point(accuracy_m=-1)],
        [point(speed=3)],  # a key the data model does not have
        [{"lat": 1, "lon": 1}],
        ["not a point"],
        "not a list",
    ],
)
def test_what_the_fast_reader_does_not_vouch_for_is_left_to_pydantic(sent: Any) -> None:
    assert read_points(sent) is None


def test_a_segment_is_read_with_pydantics_errors_when_it_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        TrackSegmentFields.model_validate({"patrol_id": PATROL, "points": [point(), point(lat=95)]})
    assert [(e["loc"], e["type"]) for e in refused.value.errors()] == [
        (("points", 1, "lat"), "less_than_equal")
    ]


def test_a_time_out_of_range_in_utc_is_refused_not_a_crash() -> None:
    with pytest.raises(ValidationError) as refused:
        TrackSegmentFields.model_validate(
            {"patrol_id": PATROL, "points": [point(t="0001-01-01T00:00:00+01:00")]}
        )
    assert refused.value.errors()[0]["loc"] == ("points",)


def test_what_pydantic_alone_accepts_is_still_accepted_in_json_form() -> None:
    segment = TrackSegmentFields.model_validate(
        {"patrol_id": PATROL, "points": [point(lat="-5.5", t="2026-03-09T07:34:02.1234567Z")]}
    )
    assert segment.points == [
        {
            "t": "2026-03-09T07:34:02.123456Z",
            "lat": -5.5,
            "lon": -77.22,
            "accuracy_m": None,
            "alt_m": None,
        }
    ]
    assert segment.model_dump(mode="json")["points"] == segment.points


# Times as tablets might write them, right and wrong.
digits = st.integers(0, 9).map(str)
offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "-05:00", "+05:30", "+14:00", "-12:00", ""]),
    st.builds(lambda h, m: f"{h:+03d}:{m:02d}", st.integers(-30, 30), st.integers(0, 99)),
    st.builds(lambda h, m: f"{h:+03d}{m:02d}", st.integers(-14, 14), st.integers(0, 59)),
)
fractions = st.one_of(
    st.just(""), st.text("0123456789", min_size=0, max_size=9).map(lambda d: "." + d)
)
times = st.one_of(
    st.builds(
        lambda moment, sep, fraction, offset: (
            moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + offset
        ),
        st.datetimes(),  # naive: the offset is the text's own
        st.sampled_from(["T", "t", " ", "_"]),
        fractions,
        offsets,
    ),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])).map(
        datetime.isoformat
    ),
    st.text(max_size=30),
    st.integers(-(2**40), 2**40),
    st.none(),
)
numbers = st.one_of(
    st.floats(-200, 200, allow_nan=False),
    st.integers(-200, 200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1.5", "-5", "x", True, None]),
)
points = st.dictionaries(
    st.sampled_from(["t", "lat", "lon", "accuracy_m", "alt_m", "speed"]),
    st.one_of(times, numbers),
).map(lambda extra: {"t": "2026-03-09T07:34:02-05:00", "lat": 0.0, "lon": 0.0} | extra)
some = st.lists(
    st.one_of(
        points,
        st.builds(point, t=times),
        st.builds(point, lat=numbers, lon=numbers, accuracy_m=numbers, alt_m=numbers),
    ),
    min_size=0,
    max_size=4,
)


@settings(max_examples=800, deadline=None)
@given(some)
@example([point(t="2026-03-09T07:34:02.9999995Z")])
@example([point(t="9999-12-31T23:59:59-05:00")])
@example([point(t="2026-03-09T24:00:00Z")])
@example([point(t="2026-02-29T00:00:00Z")])
def test_the_fast_reader_never_parts_from_pydantic(sent: list[dict[str, Any]]) -> None:
    fast = read_points(sent)
    if fast is not None:
        # Every key, sorted: the order the audit chain hashes them in (sync.platform.spliced).
        keys = [["accuracy_m", "alt_m", "lat", "lon", "t"]] * len(fast)
        assert [list(p) for p in fast] == keys
        assert all(type(p["lat"]) is float and type(p["lon"]) is float for p in fast)
        slow = by_pydantic(sent)
        assert fast == slow
        assert [list(p) for p in slow or []] == keys


# ---------------------------------------------------------------- read as a push is parsed


def push_body(*changes: dict[str, Any]) -> bytes:
    return json.dumps({"protocol": 1, "device_id": PATROL, "changes": list(changes)}).encode()


def segment(points: Any, **fields: Any) -> dict[str, Any]:
    return change(
        "track_segment", PATROL, "create", 1, {"patrol_id": PATROL, "points": points, **fields}
    )


def test_a_pushs_points_are_read_as_it_is_parsed_and_kept_as_sent() -> None:
    sent = [point(accuracy_m=8.4), point(t="2026-03-09T07:35:02-05:00", alt_m=1093.2)]
    body = push_body(segment(sent), change("patrol", PATROL, "create", 2, {"points": sent}))

    document = parse_json(body, reading=read_sent_points)
    plain = parse_json(body)

    points = document["changes"][0]["fields"]["points"]
    assert type(points) is ReadPoints
    assert points == sent
    assert points.read == read_points(sent)
    assert read_points(points) is points.read
    # Their JSON form's text, written once: what every document holding them splices in.
    read = points.read
    assert type(read) is PointsJSON
    assert read.json_text == orjson.dumps(list(read), option=orjson.OPT_SORT_KEYS)
    assert Spliced(read).text is read.json_text
    assert json_text(read) == json_text(list(read)) == read.json_text.decode()
    # Another record type's field of that name is not a track's.
    assert type(document["changes"][1]["fields"]["points"]) is list
    # Every writer of the change as sent writes it as it came.
    assert orjson.dumps(document, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        plain, option=orjson.OPT_SORT_KEYS
    )
    assert json.dumps(document, sort_keys=True) == json.dumps(plain, sort_keys=True)
    batch, same = PushRequest.model_validate(document), PushRequest.model_validate(plain)
    assert batch.changes[0].fields["points"] is points
    assert batch.model_dump(mode="json") == same.model_dump(mode="json")
    # What a push keeps and hashes of each change, and the records it would make.
    prepared, expected = prepare(batch, CATALOG), prepare(same, CATALOG)
    for ours, theirs in zip(prepared.values(), expected.values(), strict=True):
        assert (ours.text, ours.digest, ours.document) == (
            theirs.text,
            theirs.digest,
            theirs.document,
        )
        assert ours.created == theirs.created
    created = prepared[batch.changes[0].change_id].created
    assert isinstance(created, tuple)
    assert created[1]["points"] is read  # the segment's state takes the reading as it is


@pytest.mark.parametrize(
    "fields",
    [
        {"points": [point(lat=json.loads(nested(80, "1")))]},  # deep inside a point
        {"points": [point(), json.loads(nested(80))]},  # a point that is no point
        {"points": [point()], "deep": json.loads(nested(80))},  # beside the points
        {"points": json.loads(nested(80))},
    ],
    ids=["in-a-point", "in-the-list", "beside", "the-list-itself"],
)
def test_points_not_vouched_for_have_their_depth_checked(fields: dict[str, Any]) -> None:
    body = push_body(change("track_segment", PATROL, "create", 1, {"patrol_id": PATROL, **fields}))

    with pytest.raises(json.JSONDecodeError, match="nested"):
        parse_json(body, reading=read_sent_points)


@pytest.mark.parametrize(
    "document",
    [
        [segment([point()])],
        {"changes": {"0": segment([point()])}},
        {"changes": [None, 7, "track_segment", [segment([point()])]]},
        {"changes": [{**segment([point()]), "fields": [point()]}]},
        {"changes": [{**segment([point()]), "fields": {"points": {"t": 1}}}]},
        {"changes": [segment([])]},
        {"changes": [segment([point(lat=91)])]},
    ],
)
def test_only_a_segments_points_its_reader_vouches_for_are_marked(document: Any) -> None:
    before = json.dumps(document, sort_keys=True)

    read_sent_points(document)

    assert json.dumps(document, sort_keys=True) == before
    assert "ReadPoints" not in repr(_types_in(document))


def _types_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {type(value).__name__}.union(*map(_types_in, value.values()))
    if isinstance(value, list):
        return {type(value).__name__}.union(*map(_types_in, value))
    return set()
