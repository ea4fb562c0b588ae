"""Observation attributes are validated on push against their category's typed
attributes: number, text, list (one of its options), bool, date; required
ones must be there; undeclared ones are refused. A refused observation is rejected
alone, with the attribute named, and nothing of it is stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import World
from tests.sync_support import Tablet

CATEGORY = {
    "key": "threat.logging.timber",
    "name_es": "Tala de madera",
    "name_en": "Timber logging",
    "attributes": [
        {"key": "trees", "type": "number", "required": True},
        {"key": "species", "type": "text"},
        {"key": "tool", "type": "list", "options": ["motosierra", "hacha"]},
        {"key": "fresh", "type": "bool"},
        {"key": "felled_on", "type": "date"},
    ],
}


@pytest.fixture
def tablet(world: World) -> tuple[Tablet, str]:
    sector = world.sector("AM-01")
    made = world.admin.post("/observation-categories", json=CATEGORY)
    assert made.status_code == 201, made.text
    ranger = world.user("ranger", sector_ids=[sector["id"]])
    return Tablet(world.device(ranger)), sector["id"]


def _observe(tablet: Tablet, sector_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return tablet.send(
        "observation",
        str(uuid.uuid4()),
        "create",
        {
            "sector_id": sector_id,
            "category_key": "threat.logging.timber",
            "observed_at": "2026-03-02T09:00:00-05:00",
            "lat": -5.8,
            "lon": -77.3,
            "attributes": attributes,
        },
    )


@pytest.mark.parametrize(
    "attributes",
    [
        {"trees": 3},
        {"trees": 2.5, "species": "cedro", "tool": "hacha", "fresh": False},
        {"trees": 0, "felled_on": "2026-02-28", "species": None},
    ],
)
def test_attributes_of_the_declared_types_are_applied(
    tablet: tuple[Tablet, str], attributes: dict[str, Any]
) -> None:
    result = _observe(*tablet, attributes)
    assert result["status"] == "applied", result


@pytest.mark.parametrize(
    ("attributes", "field", "code"),
    [
        ({}, "trees", "missing"),
        ({"trees": None}, "trees", "missing"),
        ({"trees": "3"}, "trees", "invalid_attribute"),
        ({"trees": True}, "trees", "invalid_attribute"),
        ({"trees": 1, "species": 7}, "species", "invalid_attribute"),
        ({"trees": 1, "tool": "machete"}, "tool", "invalid_attribute"),
        ({"trees": 1, "fresh": "yes"}, "fresh", "invalid_attribute"),
        ({"trees": 1, "felled_on": "28/02/2026"}, "felled_on", "invalid_attribute"),
        ({"trees": 1, "felled_on": "2026-02-30"}, "felled_on", "invalid_attribute"),
        ({"trees": 1, "calibre": 40}, "calibre", "unknown_attribute"),
    ],
)
def test_an_attribute_off_its_category_rejects_the_observation(
    tablet: tuple[Tablet, str], attributes: dict[str, Any], field: str, code: str
) -> None:
    result = _observe(*tablet, attributes)
    assert result["status"] == "rejected", result
    assert [(e["field"], e["code"]) for e in result["errors"]] == [
        (f"fields.attributes.{field}", code)
    ]


def test_a_value_off_a_lists_options_names_the_allowed_values(
    tablet: tuple[Tablet, str],
) -> None:
    result = _observe(*tablet, {"trees": 1, "tool": "machete"})
    assert result["errors"][0]["message"] == "expected one of: motosierra, hacha"


def test_an_unknown_category_rejects_the_observation(tablet: tuple[Tablet, str]) -> None:
    device, sector_id = tablet
    result = device.send(
        "observation",
        str(uuid.uuid4()),
        "create",
        {
            "sector_id": sector_id,
            "category_key": "threat.mining",
            "observed_at": "2026-03-02T09:00:00-05:00",
            "lat": -5.8,
            "lon": -77.3,
        },
    )
    assert result["status"] == "rejected", result
    assert result["errors"][0]["code"] == "unknown_category"
