"""Patrol exports: the CSV, the GeoJSON and the GPX, against hand-checked
contents, with the filters and scope of ``GET /patrols``, streamed in chunks."""

from __future__ import annotations

import csv
import io
import json
import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sync.patrols import exports
from sync.platform import csv_files
from tests.conftest import Caller, World, assert_problem
from tests.patrol_support import PatrolTablet, at, walk
from tests.sync_support import change, push

LAT, LON = -5.8, -77.3
MORNING = at("2026-03-02T08:00:00-05:00")
GPX = "{http://www.topografix.com/GPX/1/1}"
BOM = b"\xef\xbb\xbf"

LOGGING = {
    "key": "threat.logging.timber",
    "name_es": "Tala ilegal de árboles",
    "name_en": "Illegal timber logging",
    "attributes": [
        {"key": "species", "type": "text"},
        {"key": "volume_m3", "type": "number"},
        {"key": "stumps", "type": "number"},
    ],
}
SIGHTING = {
    "key": "wildlife.sighting",
    "name_es": "Avistamiento de fauna",
    "name_en": "Wildlife sighting",
    "attributes": [
        {"key": "species", "type": "text"},
        {"key": "count", "type": "number"},
        {"key": "confirmed", "type": "bool"},
    ],
}


@pytest.fixture
def park(world: World) -> dict[str, Any]:
    """Three sectors (the third with no patrol), their people, two categories."""
    sector, other, empty = world.sector("AM-01"), world.sector("AM-02"), world.sector("AM-03")
    ranger = world.user("ranger", sector_ids=[sector["id"], other["id"]])
    community = world.community(sector["id"])
    categories = {}
    for category in (LOGGING, SIGHTING):
        made = world.admin.post("/observation-categories", json=category)
        assert made.status_code == 201, made.text
        categories[category["key"]] = made.json()["id"]
    return {
        "sector": sector["id"],
        "other": other["id"],
        "ranger": ranger,
        "categories": categories,
        "tablet": PatrolTablet(world.device(ranger)),
        "lead": world.user("ranger_lead", sector_ids=[sector["id"]]),
        "outsider": world.user("ranger_lead", sector_ids=[empty["id"]]),
        "coordinator": world.user("coordinator"),
        "worker": world.user("extension_worker", community_ids=[community["id"]]),
    }


def observation(key: str, when: Any, **fields: Any) -> dict[str, Any]:
    return {"category_key": key, "observed_at": when, "lat": LAT, "lon": LON, **fields}


def rows(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.content.startswith(BOM)
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


def header(answer: Any) -> list[str]:
    return next(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


def two_walks(start: Any, *, second_minutes: int = 30) -> list[list[Any]]:
    """30 minutes north at 50 m a minute (1.5 km), 45 minutes without a fix, then
    ``second_minutes`` more from where the first ended."""
    first = walk(start, LAT, LON, minutes=30, step_m=50)
    resumed = first[-1][0] + timedelta(minutes=45)
    return [first, walk(resumed, first[-1][1], LON, minutes=second_minutes, step_m=50)]


def foot_patrol(park: dict[str, Any]) -> str:
    """A patrol on AM-01 with two observations, one per category, and a gap in its track."""
    ranger: Caller = park["ranger"]
    tablet: PatrolTablet = park["tablet"]
    return tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=4, minutes=30),
        rest_minutes=30,
        transport="a pie",
        objective='=HYPERLINK("http://example.com","ver")',
        leader_id=str(ranger.user_id),
        members=[{"user_id": str(ranger.user_id)}, {"name": "Juan Pérez", "role": "guía"}],
        segments=two_walks(MORNING),
        observations=[
            observation(
                "wildlife.sighting",
                MORNING + timedelta(hours=2),
                attributes={"species": "@mono choro", "count": 2, "confirmed": True},
                notes="=1+1",
            ),
            observation(
                "threat.logging.timber",
                MORNING + timedelta(hours=1),
                attributes={"species": "cedro", "volume_m3": 12.5, "stumps": 3},
                notes="señal débil",
                action_taken="reported",
                gps={"accuracy_m": 4.5, "fix": "gps"},
            ),
        ],
    )


# ---------------------------------------------------------------- CSV


def test_the_csv_has_a_row_per_observation_with_its_patrol_and_attribute_columns(
    park: dict[str, Any],
) -> None:
    ranger: Caller = park["ranger"]
    tablet: PatrolTablet = park["tablet"]
    patrol = foot_patrol(park)
    quiet = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING + timedelta(days=1),
        ended_at=MORNING + timedelta(days=1, hours=2),
    )

    answer = park["lead"].get("/patrols/export.csv")

    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="patrols.csv"'
    assert header(answer) == [
        *exports.PATROL_COLUMNS,
        *exports.OBSERVATION_COLUMNS,
        # Categories by key, each one's attributes as declared, each key once.
        "attr_species",
        "attr_volume_m3",
        "attr_stumps",
        "attr_count",
        "attr_confirmed",
        "other_attributes",
    ]
    logging, sighting, empty = rows(answer)
    patrol_columns = {
        "patrol_id": patrol,
        "sector_code": "AM-01",
        "status": "submitted",
        "patrol_type": "ground",
        "objective": """'=HYPERLINK("http://example.com","ver")""",
        "leader_username": ranger.username,
        "leader_full_name": ranger.username.title(),
        "members": f"{ranger.username.title()}; Juan Pérez",
        "transport": "a pie",
        "started_at": "2026-03-02T08:00:00-05:00",
        "ended_at": "2026-03-02T12:30:00-05:00",
        "rest_minutes": "30",
        "patrol_hours": "4.5",
        "field_hours": "4.0",
        "distance_km": "3.0",  # two stretches of 1.5 km; the gap between is not walked
        "point_count": "62",
        "comment": "",
        "attachment_urls": "",
    }
    assert logging.items() >= patrol_columns.items()
    assert sighting.items() >= patrol_columns.items()
    assert {k: v for k, v in logging.items() if k not in patrol_columns} == {
        "observation_id": logging["observation_id"],
        "category_key": "threat.logging.timber",
        "category_name_es": "Tala ilegal de árboles",
        "observed_at": "2026-03-02T09:00:00-05:00",
        "lat": "-5.8",  # numbers are not text: no quote for the minus sign
        "lon": "-77.3",
        "accuracy_m": "4.5",
        "gps_fix": "gps",
        "action_taken": "reported",
        "notes": "señal débil",
        "observation_attachment_urls": "",
        "attr_species": "cedro",
        "attr_volume_m3": "12.5",
        "attr_stumps": "3",
        "attr_count": "",
        "attr_confirmed": "",
        "other_attributes": "",
    }
    assert sighting["observed_at"] == "2026-03-02T10:00:00-05:00"
    assert sighting["category_name_es"] == "Avistamiento de fauna"
    assert sighting["notes"] == "'=1+1"
    assert sighting["attr_species"] == "'@mono choro"
    assert (sighting["attr_count"], sighting["attr_confirmed"]) == ("2", "true")
    assert sighting["attr_volume_m3"] == ""
    # A patrol with no observation still has its row, so its effort is counted.
    assert empty["patrol_id"] == quiet
    assert (empty["patrol_hours"], empty["field_hours"]) == ("2.0", "2.0")
    assert (empty["distance_km"], empty["point_count"]) == ("0.0", "0")
    assert all(empty[column] == "" for column in exports.OBSERVATION_COLUMNS)
    assert empty["attr_species"] == empty["other_attributes"] == ""


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=SUM(A1:A9)", "'=SUM(A1:A9)"),
        ("+51 942 000 000", "'+51 942 000 000"),
        ("-cedro", "'-cedro"),
        ("@mono", "'@mono"),
        ("\tpestaña", "'\tpestaña"),
        ("\rretorno", "'\rretorno"),
        ("cedro = caoba", "cedro = caoba"),
        (-5.8, "-5.8"),
        (-3, "-3"),
        (True, "true"),
        (None, ""),
    ],
)
def test_a_text_cell_read_as_a_formula_is_quoted_and_a_number_is_not(
    value: Any, written: str
) -> None:
    assert csv_files.cell(value, ZoneInfo("America/Lima")) == written


def test_attributes_the_category_no_longer_declares_go_in_other_attributes(
    park: dict[str, Any], world: World
) -> None:
    tablet: PatrolTablet = park["tablet"]
    patrol = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=1),
        observations=[
            observation(
                "threat.logging.timber", MORNING, attributes={"species": "tornillo", "stumps": 4}
            )
        ],
    )
    changed = world.admin.patch(
        f"/observation-categories/{park['categories']['threat.logging.timber']}",
        json={"attributes": [{"key": "species", "type": "text"}]},
    )
    assert changed.status_code == 200, changed.text

    answer = park["coordinator"].get("/patrols/export.csv")

    # Only the logging category is in the export: the sighting's attributes are not columns.
    assert header(answer)[-2:] == ["attr_species", "other_attributes"]
    (row,) = rows(answer)
    assert row["patrol_id"] == patrol
    assert row["attr_species"] == "tornillo"
    assert json.loads(row["other_attributes"]) == {"stumps": 4}


def test_the_csv_takes_the_filters_and_scope_of_the_patrol_list(park: dict[str, Any]) -> None:
    tablet: PatrolTablet = park["tablet"]
    mine = foot_patrol(park)
    draft = tablet.patrol(
        sector_id=park["sector"], started_at=MORNING + timedelta(days=3), ended_at=None,
        status="draft",
    )  # fmt: skip
    elsewhere = tablet.patrol(
        sector_id=park["other"],
        started_at=MORNING - timedelta(days=1),
        ended_at=MORNING - timedelta(hours=23),
        observations=[observation("wildlife.sighting", MORNING, attributes={"count": 1})],
    )

    def exported(caller: Caller, **params: str) -> list[str]:
        return [row["patrol_id"] for row in rows(caller.get("/patrols/export.csv", params=params))]

    lead: Caller = park["lead"]
    assert exported(lead) == [mine, mine, draft]  # by started_at; not the other sector
    assert exported(park["coordinator"]) == [elsewhere, mine, mine, draft]
    assert exported(park["coordinator"], sector_id=park["other"]) == [elsewhere]
    assert exported(lead, status="draft") == [draft]
    assert exported(lead, category="threat") == [mine, mine]  # the patrol, all its rows
    assert exported(lead, category="wildlife") == [mine, mine]
    assert exported(lead, **{"from": "2026-03-03"}) == [draft]
    assert exported(lead, to="2026-03-02") == [mine, mine]
    assert exported(park["ranger"], sector_id=park["other"]) == [elsewhere]
    # A lead of another sector gets the header and nothing of these sectors.
    outsider = park["outsider"].get("/patrols/export.csv")
    assert rows(outsider) == []
    assert "attr_species" not in header(outsider)

    assert_problem(park["worker"].get("/patrols/export.csv"), 403, "forbidden")
    assert_problem(lead.get("/patrols/export.csv", params={"satus": "draft"}), 422)
    assert_problem(lead.get("/patrols/export.csv", params={"from": "2026-13-01"}), 422)
    assert_problem(lead.get("/patrols/export.csv", params={"from": "2026-03-02T08:00"}), 422)
    both = {"from": "2026-03-05", "to": "2026-03-01"}
    assert_problem(lead.get("/patrols/export.csv", params=both), 422)
    assert_problem(lead.get("/patrols/export.csv", params={"status": "lost"}), 422)


def test_a_long_csv_arrives_in_chunks_in_a_stable_order(
    park: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tablet: PatrolTablet = park["tablet"]
    # Two patrols starting at the same instant (ordered by id), one not yet started (last).
    made = [
        tablet.patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None, status="draft")
        for _ in range(2)
    ]
    later = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING + timedelta(days=1),
        ended_at=None,
        status="draft",
        observations=[observation("wildlife.sighting", MORNING + timedelta(days=1))],
    )
    unstarted = tablet.patrol(
        sector_id=park["sector"], started_at=None, ended_at=None, status="draft"
    )
    monkeypatch.setattr(exports, "CHUNK_SIZE", 1)
    lead: Caller = park["lead"]

    with lead.client.stream(
        "GET", "/patrols/export.csv", headers={**lead.headers, "Accept-Encoding": "identity"}
    ) as answer:
        assert answer.status_code == 200
        pieces = list(answer.iter_raw())

    assert len(pieces) >= 5  # the header, then one piece per chunk of one patrol
    assert pieces[0].startswith(BOM)
    body = b"".join(pieces).decode("utf-8-sig")
    order = [row["patrol_id"] for row in csv.DictReader(io.StringIO(body))]
    assert order == [*sorted(made, key=uuid.UUID), later, unstarted]


# ---------------------------------------------------------------- GeoJSON


def test_the_geojson_has_tracks_as_linestrings_and_observations_as_points(
    park: dict[str, Any],
) -> None:
    tablet: PatrolTablet = park["tablet"]
    segments = two_walks(MORNING, second_minutes=10)
    lone = (segments[-1][-1][0] + timedelta(hours=1), LAT + 0.1, LON + 0.1)
    patrol = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=3),
        leader_id=str(park["ranger"].user_id),
        segments=[*segments, [lone]],
        observations=[
            observation(
                "wildlife.sighting",
                MORNING + timedelta(minutes=20),
                lat=-5.81,
                lon=-77.31,
                attributes={"species": "oso de anteojos", "count": 1},
                notes="huellas frescas",
            )
        ],
    )

    answer = park["lead"].get("/patrols/export.geojson")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/geo+json"
    collection = json.loads(answer.content)
    assert collection["type"] == "FeatureCollection"
    tracks = [f for f in collection["features"] if f["properties"]["kind"] == "track"]
    (seen,) = [f for f in collection["features"] if f["properties"]["kind"] == "observation"]
    assert [f["geometry"]["type"] for f in tracks] == ["LineString", "LineString", "Point"]
    first, second, single = (f["geometry"]["coordinates"] for f in tracks)
    assert (len(first), len(second)) == (31, 11)
    assert first[0] == [LON, LAT]  # [lon, lat]
    assert single == [LON + 0.1, LAT + 0.1]
    assert tracks[0]["properties"] | {"coordTimes": None, "distance_km": None} == {
        "kind": "track",
        "patrol_id": patrol,
        "sector_id": park["sector"],
        "sector_code": "AM-01",
        "status": "submitted",
        "patrol_type": "ground",
        "started_at": "2026-03-02T08:00:00-05:00",
        "ended_at": "2026-03-02T11:00:00-05:00",
        "leader_id": str(park["ranger"].user_id),
        "stretch": 1,
        "stretch_started_at": "2026-03-02T08:00:00-05:00",
        "stretch_ended_at": "2026-03-02T08:30:00-05:00",
        "point_count": 31,
        "coordTimes": None,
        "distance_km": None,
        "attachment_urls": [],
    }
    assert tracks[0]["properties"]["distance_km"] == pytest.approx(1.5)
    assert tracks[0]["properties"]["coordTimes"][1] == "2026-03-02T08:01:00-05:00"
    assert seen["geometry"] == {"type": "Point", "coordinates": [-77.31, -5.81]}
    assert seen["properties"] == {
        "kind": "observation",
        "observation_id": seen["properties"]["observation_id"],
        "patrol_id": patrol,
        "sector_id": park["sector"],
        "category_key": "wildlife.sighting",
        "category_name_es": "Avistamiento de fauna",
        "observed_at": "2026-03-02T08:20:00-05:00",
        "accuracy_m": None,
        "gps_fix": None,
        "action_taken": "observed",
        "notes": "huellas frescas",
        "attributes": {"species": "oso de anteojos", "count": 1},
        "attachment_urls": [],
    }


def test_a_geojson_of_nothing_is_an_empty_feature_collection(park: dict[str, Any]) -> None:
    foot_patrol(park)

    answer = park["outsider"].get("/patrols/export.geojson")

    assert answer.status_code == 200, answer.text
    assert json.loads(answer.content) == {"type": "FeatureCollection", "features": []}
    assert_problem(park["worker"].get("/patrols/export.geojson"), 403, "forbidden")
    assert_problem(park["lead"].get("/patrols/export.geojson", params={"sector": "x"}), 422)


def test_a_geojson_spanning_chunks_is_one_valid_collection(
    park: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    tablet: PatrolTablet = park["tablet"]
    bare = tablet.patrol(sector_id=park["sector"], started_at=MORNING, ended_at=None)
    tracked = foot_patrol(park)
    monkeypatch.setattr(exports, "CHUNK_SIZE", 1)

    collection = json.loads(park["lead"].get("/patrols/export.geojson").content)

    patrols = [f["properties"]["patrol_id"] for f in collection["features"]]
    # The bare patrol has no feature; the other has two stretches and two observations.
    assert patrols == [tracked] * 4
    assert bare not in patrols


# ---------------------------------------------------------------- GPX


def test_the_gpx_has_a_segment_per_stretch_with_times_and_altitudes(
    park: dict[str, Any],
) -> None:
    tablet: PatrolTablet = park["tablet"]
    segments = two_walks(MORNING, second_minutes=10)
    patrol = tablet.patrol(
        sector_id=park["sector"],
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=2),
        segments=segments,
    )
    # A third segment, with altitudes, two minutes on: it joins the second stretch.
    end = segments[-1][-1][0]
    climb = [
        {"t": (end + timedelta(minutes=m)).isoformat(), "lat": LAT, "lon": LON, "alt_m": alt}
        for m, alt in ((1, 1210.5), (2, 1212.0))
    ]
    tablet.seq += 1
    push(
        tablet.device,
        change(
            "track_segment",
            str(uuid.uuid4()),
            "create",
            tablet.seq,
            {"patrol_id": patrol, "points": climb},
        ),
    )

    answer = park["lead"].get(f"/patrols/{patrol}/track.gpx")

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/gpx+xml"
    assert f'filename="patrol-{patrol}.gpx"' in answer.headers["content-disposition"]
    root = ET.fromstring(answer.content)  # noqa: S314 (our own output)
    assert root.tag == f"{GPX}gpx"
    assert root.get("version") == "1.1"
    (track,) = root.findall(f"{GPX}trk")
    assert track.findtext(f"{GPX}name") == "AM-01 2026-03-02"
    stretches = track.findall(f"{GPX}trkseg")
    assert [len(s.findall(f"{GPX}trkpt")) for s in stretches] == [31, 13]
    first = stretches[0].findall(f"{GPX}trkpt")[0]
    assert (float(first.get("lat", "")), float(first.get("lon", ""))) == (LAT, LON)
    assert first.findtext(f"{GPX}time") == "2026-03-02T13:00:00Z"
    assert first.find(f"{GPX}ele") is None
    last = stretches[1].findall(f"{GPX}trkpt")[-1]
    assert last.findtext(f"{GPX}ele") == "1212.0"
    assert last.findtext(f"{GPX}time") == "2026-03-02T14:27:00Z"  # 08:00 + 30 + 45 + 10 + 2


def test_the_gpx_of_a_patrol_with_no_track_is_an_empty_track(park: dict[str, Any]) -> None:
    tablet: PatrolTablet = park["tablet"]
    patrol = tablet.patrol(sector_id=park["sector"], started_at=None, ended_at=None)

    answer = park["coordinator"].get(f"/patrols/{patrol}/track.gpx")

    assert answer.status_code == 200, answer.text
    root = ET.fromstring(answer.content)  # noqa: S314 (our own output)
    (track,) = root.findall(f"{GPX}trk")
    assert track.findtext(f"{GPX}name") == "AM-01"
    assert track.findall(f"{GPX}trkseg") == []


def test_the_gpx_of_a_patrol_out_of_scope_is_not_found(park: dict[str, Any]) -> None:
    patrol = foot_patrol(park)

    assert_problem(park["outsider"].get(f"/patrols/{patrol}/track.gpx"), 404, "not_found")
    assert_problem(park["lead"].get(f"/patrols/{uuid.uuid4()}/track.gpx"), 404, "not_found")
    assert_problem(park["worker"].get(f"/patrols/{patrol}/track.gpx"), 403, "forbidden")
    assert park["ranger"].get(f"/patrols/{patrol}/track.gpx").status_code == 200
