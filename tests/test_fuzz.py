"""Schemathesis over every operation of the OpenAPI document, on both databases, as an
admin, as a ranger's tablet, and with no token.

What it holds: no input, valid by the document or not, makes a server error; every
answer's status and media type are documented and its body matches the documented
schema. Each operation and caller is a test of its own, so xdist spreads them and a
failure names the operation. ``FIELDSYNC_FUZZ_EXAMPLES`` (default 6) sets the examples
per operation, caller and kind of data; the whole run stays within two minutes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis.errors import Unsatisfiable
from schemathesis import CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine

from api.app import API_PREFIX, create_app
from schemas.enums import Role
from sync.platform.settings import Settings
from tests.asgi import TestClient
from tests.conftest import World, make_settings

EXAMPLES = int(os.environ.get("FIELDSYNC_FUZZ_EXAMPLES", "6"))

# Rules no JSON Schema can state, stated in words in the document and the docs: an id
# must name a record (and one in the caller's scope, of the kind the role holds), a
# period's end is not before its start, a ring must close, a category's attribute keys
# are unique, no text holds NUL (said as a pattern on plain strings, in words on
# free-form values), and a pull cursor is one this server made.
RULES_IN_WORDS = {
    "unknown_reference",
    "scope_mismatch",
    "before_from",
    "ring_not_closed",
    "duplicate_key",
    "nul_character",
}
OPAQUE = {"invalid_cursor"}
# tus's Upload-Metadata is base64 pairs the document cannot spell out, naming the file's
# hash and type; its length is bounded by a setting. Rules of the upload, in words.
UPLOAD_RULES = {
    "invalid_upload_metadata",
    "invalid_sha256",
    "unsupported_attachment_type",
    "attachment_too_large",
}
# tus answers a version it does not speak with 412, and a checksum mismatch with 460.
TUS_REFUSALS = {412, 460}


@schemathesis.serializer("application/offset+octet-stream")
def _upload_bytes(ctx: Any, value: Any) -> bytes:
    """A tus chunk: the bytes as generated (a string as its UTF-8)."""
    return value if isinstance(value, bytes) else str(value).encode()


def valid_data_is_accepted(ctx: CheckContext, response: Response, case: Any) -> bool | None:
    """Schemathesis' own check, except where valid-by-the-schema data breaks a rule
    the schema cannot state; then the answer must name that rule, nothing else."""
    if 400 <= response.status_code < 500 and case.method != "HEAD":  # HEAD has no body
        problem = response.json()
        codes = {error.get("code") for error in problem.get("errors") or []}
        if problem.get("code") in OPAQUE | UPLOAD_RULES or (codes and codes <= RULES_IN_WORDS):
            return None
    return positive_data_acceptance(ctx, response, case)


def invalid_data_is_rejected(ctx: CheckContext, response: Response, case: Any) -> bool | None:
    """Schemathesis' own check, with tus's own refusals counted as refusals."""
    if response.status_code in TUS_REFUSALS:
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    valid_data_is_accepted,
    invalid_data_is_rejected,
]
CALLERS = ["admin", "tablet", "anonymous"]


@functools.cache
def _document() -> dict[str, Any]:
    """The OpenAPI document, made by an app that needs no database (made once a process)."""
    app = create_app(make_settings(f"sqlite:///{Path('unused-by-openapi.db')}"))
    return app.openapi()


def _operation_labels() -> list[str]:
    paths = _document()["paths"]
    return [f"{method.upper()} {path}" for path, item in paths.items() for method in item]


def _headers(caller: str, world: World) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "admin":
        return world.admin.headers
    sector = world.sector()
    ranger = world.user(Role.ranger, sector_ids=[sector["id"]])
    return world.device(ranger).headers


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("label", _operation_labels())
def test_no_input_makes_a_server_error_and_every_answer_is_as_documented(
    label: str, caller: str, engine: Engine, settings: Settings
) -> None:
    app = create_app(settings, engine)
    with TestClient(app, base_url=f"http://testserver{API_PREFIX}") as client:
        headers = _headers(caller, World(client, engine, settings))
    schema = schemathesis.openapi.from_dict(_document())
    schema.app = app
    found = schema.find_operation_by_label(label)
    assert found is not None, label
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=found.as_strategy(generation_mode=mode))
        @examples(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(headers={**(case.headers or {}), **headers}, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:
            # Nothing to make invalid: an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE, label
