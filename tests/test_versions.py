"""The data model's versions (``schemas.versions``, run by ``sync.engine.versions``): each
step's upcaster and downcaster, table by table, and what the registry does at its
edges — a version too new, too old, a record type no step names, a partial update."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.records import ObservationFields
from schemas.sync import Change, ClientReport, PushRequest
from schemas.versions import CURRENT, OLDEST, STEPS, Unconvertible
from sync.catalog import CATALOG
from sync.engine import versions
from sync.platform.settings import Settings

GPS = {"accuracy_m": 4.5, "fix": None}
SECTOR = "6d3c0b6e-8a55-4d55-9a59-0f6c1b0e2a11"
V1_OBSERVATION = {
    "sector_id": SECTOR,
    "category_key": "threat.logging.timber",
    "observed_at": "2026-11-02T09:31:07-05:00",
    "lat": -5.8,
    "lon": -77.3,
    "accuracy_m": 4.5,
    "attributes": {"species": "cedro"},
}


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_steps_are_numbered_one_after_another_up_to_current() -> None:
    assert [step.makes for step in STEPS] == list(range(OLDEST + 1, CURRENT + 1))
    assert (OLDEST, CURRENT) == (1, 2)


def test_every_step_names_record_types_the_catalog_knows() -> None:
    for step in STEPS:
        assert set(step.casts) <= set(CATALOG), step.summary


# ---------------------------------------------------------------- 1 → 2: observation gps


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        pytest.param(V1_OBSERVATION, {**V1_OBSERVATION, "gps": GPS}, id="a whole create"),
        pytest.param({"accuracy_m": 12}, {"gps": {"accuracy_m": 12, "fix": None}}, id="an update"),
        pytest.param({"accuracy_m": 0}, {"gps": {"accuracy_m": 0, "fix": None}}, id="zero metres"),
        pytest.param({"accuracy_m": None}, {"gps": None}, id="accuracy emptied"),
        pytest.param({"notes": "otra"}, {"notes": "otra"}, id="an update of other fields"),
        pytest.param({}, {}, id="a delete: no fields"),
        # Whatever the device put there moves; validation then names the new field.
        pytest.param(
            {"accuracy_m": "x"}, {"gps": {"accuracy_m": "x", "fix": None}}, id="not a number"
        ),
    ],
)
def test_an_observation_of_version_1_reads_its_accuracy_as_gps(
    sent: dict[str, Any], read: dict[str, Any]
) -> None:
    expected = {k: v for k, v in read.items() if k != "accuracy_m"}

    assert versions.upcast("observation", sent, version=1) == expected


def test_a_version_1_change_naming_gps_is_refused_as_an_unknown_field() -> None:
    with pytest.raises(Unconvertible) as refused:
        versions.upcast("observation", {"gps": GPS}, version=1)

    assert (refused.value.field, refused.value.code) == ("fields.gps", "unknown_field")


@pytest.mark.parametrize(
    ("state", "old"),
    [
        pytest.param(
            {"lat": 1, "gps": {"accuracy_m": 3.5, "fix": "gps"}}, {"lat": 1, "accuracy_m": 3.5}
        ),
        pytest.param({"gps": {"accuracy_m": None, "fix": "manual"}}, {"accuracy_m": None}),
        pytest.param({"gps": None}, {"accuracy_m": None}, id="no gps"),
        pytest.param({"lat": 1}, {"lat": 1}, id="gps absent"),
    ],
)
def test_an_observation_reads_in_version_1_with_its_accuracy_alone(
    state: dict[str, Any], old: dict[str, Any]
) -> None:
    assert versions.downcast("observation", state, to_version=1) == old


# ---------------------------------------------------------------- the registry's edges


@pytest.mark.parametrize("entity", ["patrol", "attendance", "person", "no_such_type"])
def test_record_types_no_step_names_pass_unchanged(entity: str) -> None:
    fields = {"accuracy_m": 3, "gps": None, "objective": "x"}

    assert versions.upcast(entity, fields, version=1) == fields
    assert versions.downcast(entity, fields, to_version=1) == fields
    assert not versions.needs_downcast(entity, 1)


def test_a_change_of_the_current_version_passes_unchanged() -> None:
    fields = {"gps": GPS}

    assert versions.upcast("observation", fields, version=CURRENT) == fields
    assert versions.downcast("observation", fields, to_version=CURRENT) == fields
    assert not versions.needs_downcast("observation", CURRENT)


def test_the_casters_never_change_what_they_are_given() -> None:
    sent = dict(V1_OBSERVATION)
    state = {"gps": dict(GPS)}

    versions.upcast("observation", sent, version=1)
    versions.downcast("observation", state, to_version=1)

    assert (sent, state) == (V1_OBSERVATION, {"gps": GPS})


@pytest.mark.parametrize(
    ("version", "code"),
    [(CURRENT + 1, "schema_too_new"), (10**6, "schema_too_new"), (0, "app_too_old")],
)
def test_a_version_outside_the_history_is_unconvertible(version: int, code: str) -> None:
    with pytest.raises(Unconvertible) as refused:
        versions.upcast("patrol", {}, version=version)

    assert (refused.value.field, refused.value.code) == ("schema_version", code)


def _change(entity: str, schema_version: int, fields: dict[str, Any]) -> Change:
    return Change(
        change_id=uuid.uuid4(),
        seq=1,
        entity=entity,
        id=uuid.uuid4(),
        op="update",
        base_version=1,
        schema_version=schema_version,
        fields=fields,
    )


def test_a_change_is_upcast_into_a_copy_only_when_its_record_type_changed() -> None:
    patrol = _change("patrol", 1, {"objective": "x"})
    current = _change("observation", CURRENT, {"gps": GPS})
    old = _change("observation", 1, {"accuracy_m": 4.5})

    assert versions.upcast_change(patrol) is patrol
    assert versions.upcast_change(current) is current
    upcast = versions.upcast_change(old)
    assert (upcast.fields, upcast.schema_version) == ({"gps": GPS}, CURRENT)
    assert (old.fields, old.schema_version) == ({"accuracy_m": 4.5}, 1)  # what was sent
    assert upcast.change_id == old.change_id


def test_a_change_too_new_is_unconvertible_whatever_its_record_type() -> None:
    with pytest.raises(Unconvertible, match="newer than this server"):
        versions.upcast_change(_change("patrol", CURRENT + 1, {}))


@pytest.mark.parametrize(
    ("entity", "to_version", "needed"),
    [
        ("observation", 1, True),
        ("observation", CURRENT, False),
        ("observation", CURRENT + 5, False),
        ("patrol", 1, False),
        ("track_segment", 1, False),
    ],
)
def test_needs_downcast_says_which_entries_a_pull_converts(
    entity: str, to_version: int, needed: bool
) -> None:
    assert versions.needs_downcast(entity, to_version) is needed


def test_downcast_json_converts_the_entry_text_or_hands_back_the_very_text() -> None:
    stored = json.dumps({"lat": -5.8, "gps": {"accuracy_m": 4.5, "fix": "gps"}, "notes": "ñ"})

    assert versions.downcast_json("patrol", stored, 1) is stored
    assert versions.downcast_json("observation", stored, CURRENT) is stored
    old = versions.downcast_json("observation", stored, 1)
    assert json.loads(old) == {"lat": -5.8, "accuracy_m": 4.5, "notes": "ñ"}


def test_downcasting_below_what_the_downcasters_reach_is_an_app_too_old() -> None:
    assert versions.lowest_servable() == OLDEST
    with pytest.raises(versions.AppTooOld):
        versions.downcast("observation", {"gps": None}, to_version=OLDEST - 1)


# ---------------------------------------------------------------- minimum, push, pull


@pytest.mark.parametrize(
    ("minimum", "asked", "answered"),
    [
        (1, None, CURRENT),
        (1, CURRENT, CURRENT),
        (1, CURRENT + 1, CURRENT),  # a newer app reads the versions before its own
        (1, 1, 1),
        (2, 2, 2),
        (2, 1, None),
        (1, 0, None),
        (1, -3, None),
    ],
)
def test_a_pull_is_answered_in_the_version_it_asks_for_or_refused(
    minimum: int, asked: int | None, answered: int | None
) -> None:
    chosen = settings(min_schema_version=minimum)
    if answered is None:
        with pytest.raises(versions.AppTooOld) as refused:
            versions.pull_version(asked, settings=chosen)
        assert (refused.value.status, refused.value.code) == (426, "app_too_old")
    else:
        assert versions.pull_version(asked, settings=chosen) == answered


def _batch(*change_versions: int, reported: int | None = None) -> PushRequest:
    return PushRequest(
        protocol=1,
        device_id=uuid.uuid4(),
        changes=[_change("patrol", v, {}) for v in change_versions],
        client=None if reported is None else ClientReport(schema_version=reported),
    )


@pytest.mark.parametrize(
    ("minimum", "batch", "too_old"),
    [
        (1, _batch(1, 2), False),
        (2, _batch(2, 2, reported=2), False),
        (2, _batch(2, 1, 2), True),
        (2, _batch(2, reported=1), True),
        (2, _batch(reported=1), True),  # nothing to push, an old app all the same
        (2, _batch(), False),
        (2, _batch(CURRENT + 1), False),  # too new is per change: rejected and kept
    ],
)
def test_a_batch_is_too_old_when_a_change_or_its_report_is_below_the_minimum(
    minimum: int, batch: PushRequest, too_old: bool
) -> None:
    refusal = versions.too_old(batch, settings=settings(min_schema_version=minimum))

    assert (refusal is not None) is too_old
    if too_old:
        assert refusal is not None
        assert "update the app" in refusal


@pytest.mark.parametrize("value", [0, CURRENT + 1, "two"])
def test_the_minimum_setting_is_a_version_the_server_knows(value: object) -> None:
    with pytest.raises(ValidationError):
        settings(min_schema_version=value)


def test_the_minimum_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIELDSYNC_MIN_SCHEMA_VERSION", raising=False)
    assert versions.minimum(settings()) == 1

    monkeypatch.setenv("FIELDSYNC_MIN_SCHEMA_VERSION", "2")
    assert versions.minimum(settings()) == 2


# ---------------------------------------------------------------- round trips

accuracies = st.none() | st.floats(min_value=0, max_value=10_000, allow_nan=False)
other_fields = st.dictionaries(
    st.sampled_from(["notes", "lat", "lon", "category_key", "attributes"]),
    st.none() | st.integers() | st.text(max_size=5),
    max_size=4,
)


@given(accuracy=accuracies, rest=other_fields)
def test_a_version_1_state_upcast_then_downcast_is_itself(
    accuracy: float | None, rest: dict[str, Any]
) -> None:
    state = {**rest, "accuracy_m": accuracy}

    upcast = versions.upcast("observation", state, version=1)

    assert versions.downcast("observation", upcast, to_version=1) == state


@given(
    accuracy=accuracies,
    fix=st.sampled_from([None, "gps", "network", "manual"]),
    rest=other_fields,
)
def test_a_version_2_state_downcast_then_upcast_keeps_its_accuracy_and_loses_its_fix(
    accuracy: float | None, fix: str | None, rest: dict[str, Any]
) -> None:
    state = {**rest, "gps": {"accuracy_m": accuracy, "fix": fix}}

    down = versions.downcast("observation", state, to_version=1)
    again = versions.upcast("observation", down, version=1)

    assert again == {
        **rest,
        "gps": None if accuracy is None else {"accuracy_m": accuracy, "fix": None},
    }


@given(accuracy=accuracies)
def test_a_whole_version_1_create_upcast_is_a_valid_version_2_record(
    accuracy: float | None,
) -> None:
    upcast = versions.upcast("observation", {**V1_OBSERVATION, "accuracy_m": accuracy}, version=1)

    record = ObservationFields.model_validate(upcast)

    assert record.gps is None if accuracy is None else record.gps is not None
    if record.gps is not None:
        assert (record.gps.accuracy_m, record.gps.fix) == (accuracy, None)
