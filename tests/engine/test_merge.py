"""The pure merge decisions: how a device's update meets the server's record (no database)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.engine.merge import Merge, changed_fields, merge_update

SERVER = {"objective": "Río Mayo", "comment": "lluvia", "rest_minutes": 30, "status": "draft"}


@pytest.mark.parametrize(
    ("incoming", "others", "expected"),
    [
        pytest.param(
            {"comment": "sol"},
            set(),
            Merge("applied", {"comment": "sol"}),
            id="nobody-else-changed-anything",
        ),
        pytest.param(
            {"comment": "sol", "rest_minutes": 45},
            set(),
            Merge("applied", {"comment": "sol", "rest_minutes": 45}),
            id="nobody-else-changed-several-fields",
        ),
        pytest.param(
            {},
            set(),
            Merge("applied", {}),
            id="an-empty-update-applies-nothing",
        ),
    ],
)
def test_an_update_nobody_else_touched_is_applied_whole(
    incoming: dict[str, Any], others: set[str], expected: Merge
) -> None:
    assert merge_update(incoming=incoming, current=SERVER, changed_by_others=others) == expected


@pytest.mark.parametrize(
    ("incoming", "others", "expected"),
    [
        pytest.param(
            {"comment": "sol"},
            {"objective"},
            Merge("merged", {"comment": "sol"}),
            id="others-changed-another-field",
        ),
        pytest.param(
            {"comment": "sol", "rest_minutes": 45},
            {"objective", "status"},
            Merge("merged", {"comment": "sol", "rest_minutes": 45}),
            id="others-changed-several-other-fields",
        ),
        pytest.param(
            {"objective": "Río Mayo"},
            {"objective"},
            Merge("merged", {"objective": "Río Mayo"}),
            id="others-changed-the-same-field-to-the-same-value",
        ),
        pytest.param(
            {"objective": "Río Mayo", "comment": "sol"},
            {"objective"},
            Merge("merged", {"objective": "Río Mayo", "comment": "sol"}),
            id="agreeing-field-and-a-free-field",
        ),
    ],
)
def test_an_update_that_does_not_overlap_or_agrees_is_merged(
    incoming: dict[str, Any], others: set[str], expected: Merge
) -> None:
    decision = merge_update(incoming=incoming, current=SERVER, changed_by_others=others)

    assert decision == expected
    assert decision.conflicts == {}


@pytest.mark.parametrize(
    ("incoming", "others", "apply", "conflicts"),
    [
        pytest.param(
            {"objective": "Quebrada Honda"},
            {"objective"},
            {},
            {"objective": ("Río Mayo", "Quebrada Honda")},
            id="one-field-both-sides",
        ),
        pytest.param(
            {"objective": "Quebrada Honda", "comment": "sol"},
            {"objective"},
            {"comment": "sol"},
            {"objective": ("Río Mayo", "Quebrada Honda")},
            id="overlap-plus-a-free-field",
        ),
        pytest.param(
            {"objective": "Quebrada Honda", "rest_minutes": 30, "status": "submitted"},
            {"objective", "rest_minutes"},
            {"rest_minutes": 30, "status": "submitted"},
            {"objective": ("Río Mayo", "Quebrada Honda")},
            id="one-overlap-one-agreement-one-free",
        ),
        pytest.param(
            {"objective": "Quebrada Honda", "comment": None},
            {"objective", "comment"},
            {},
            {"objective": ("Río Mayo", "Quebrada Honda"), "comment": ("lluvia", None)},
            id="two-fields-both-sides-one-cleared",
        ),
    ],
)
def test_an_overlap_with_different_values_is_a_conflict_that_still_applies_the_rest(
    incoming: dict[str, Any],
    others: set[str],
    apply: dict[str, Any],
    conflicts: dict[str, tuple[Any, Any]],
) -> None:
    decision = merge_update(incoming=incoming, current=SERVER, changed_by_others=others)

    assert decision.status == "conflict"
    assert decision.apply == apply
    assert decision.conflicts == conflicts


def test_a_conflict_keeps_the_server_value_first_and_the_device_value_second() -> None:
    decision = merge_update(
        incoming={"comment": "device"}, current={"comment": "server"}, changed_by_others={"comment"}
    )

    assert decision.conflicts["comment"] == ("server", "device")
    assert "comment" not in decision.apply


def test_a_field_missing_on_the_server_counts_as_none() -> None:
    agrees = merge_update(incoming={"notes": None}, current={}, changed_by_others={"notes"})
    differs = merge_update(incoming={"notes": "x"}, current={}, changed_by_others={"notes"})

    assert agrees == Merge("merged", {"notes": None})
    assert differs.conflicts == {"notes": (None, "x")}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param({"a": 1}, {"a": 1}, [], id="nothing-changed"),
        pytest.param({"a": 1, "b": 2}, {"a": 1, "b": 3}, ["b"], id="one-changed"),
        pytest.param({"b": 1, "a": 1}, {"a": 2, "b": 2}, ["a", "b"], id="sorted-by-name"),
        pytest.param({"a": 1}, {"a": 1, "c": None}, [], id="added-as-none-is-no-change"),
        pytest.param({"a": 1}, {}, ["a"], id="removed-is-a-change"),
        pytest.param({}, {"z": 0, "y": [1]}, ["y", "z"], id="added-with-values"),
        pytest.param({"m": [1, 2]}, {"m": [2, 1]}, ["m"], id="list-order-matters"),
        pytest.param({"d": {"x": 1}}, {"d": {"x": 1}}, [], id="equal-documents"),
    ],
)
def test_changed_fields_lists_the_fields_whose_value_differs_in_name_order(
    before: dict[str, Any], after: dict[str, Any], expected: list[str]
) -> None:
    assert changed_fields(before, after) == expected
