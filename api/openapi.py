"""The OpenAPI document, with what FastAPI cannot see for itself.

Push reads its body by hand (``api.routes.sync.read_batch``: size limits and gzip
before parsing), so FastAPI knows no model for it. Its schema is added here as a
component, ``PushRequest`` with ``Change`` beside it, so that generated clients and
the fuzzer of ``make test`` can read the protocol's most important operation.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from api import errors
from schemas.sync import PushRequest

REF_TEMPLATE = "#/components/schemas/{model}"
# Bodies read by hand, by operation path and method: their model becomes a component.
HAND_READ_BODIES = {("/api/v1/sync/push", "post"): PushRequest}


def document(app: FastAPI) -> dict[str, Any]:
    """``app.openapi``: made once, then served as made."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    _, schemas = models_json_schema(
        [(model, "validation") for model in HAND_READ_BODIES.values()],
        ref_template=REF_TEMPLATE,
    )
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in schemas.get("$defs", {}).items():
        components.setdefault(name, schema)
    for (path, method), model in HAND_READ_BODIES.items():
        spec["paths"][path][method]["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}
            },
        }
    for item in spec["paths"].values():
        for operation in item.values():
            for answer in operation["responses"].values():
                _problem_as_problem_json(answer)
            if "requestBody" in operation:
                # api.limits: every body is capped and must arrive in time.
                problem = operation["responses"]["400"]["content"]
                for status in (408, 413):
                    operation["responses"].setdefault(
                        str(status),
                        {"description": errors.PROBLEM_DESCRIPTIONS[status], "content": problem},
                    )
    for item in spec["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "Tus-Resumable":
                    _tus_version(parameter)
    for schema in _request_schemas(spec):
        _refuse_nul(schema)
    app.openapi_schema = spec
    return spec


def _tus_version(parameter: dict[str, Any]) -> None:
    """tus clients send ``Tus-Resumable: 1.0.0`` on every request: the document says
    so. The route reads it as optional to answer a missing or other version with tus's
    ``412`` (and ``Tus-Version``) rather than a validation error."""
    parameter["required"] = True
    parameter["schema"] = {"type": "string", "enum": ["1.0.0"]}


def _problem_as_problem_json(answer: dict[str, Any]) -> None:
    """FastAPI files a response's model under application/json; a problem is served
    as application/problem+json (RFC 9457), so its schema goes there, alone."""
    content = answer.get("content", {})
    if errors.PROBLEM_JSON in content and "application/json" in content:
        schema = content["application/json"].get("schema", {})
        if schema.get("$ref", "").endswith("/Problem"):
            answer["content"] = {errors.PROBLEM_JSON: {"schema": schema}}


# Text no field can hold: PostgreSQL stores no NUL. Said on every plain string of the
# components (shared by requests and answers, and no answer holds NUL either) and of the
# query parameters; free-form values (a change's fields) say it in words (``nul_character``).
NO_NUL = "^[^\\u0000]*$"


def _request_schemas(spec: dict[str, Any]) -> list[dict[str, Any]]:
    schemas = list(spec.get("components", {}).get("schemas", {}).values())
    for item in spec["paths"].values():
        for operation in item.values():
            schemas.extend(p["schema"] for p in operation.get("parameters", []) if "schema" in p)
    return schemas


def _refuse_nul(schema: Any) -> None:
    """Adds ``pattern`` to each string schema within ``schema`` that has no other
    constraint on its characters; walked with a stack, as schemas nest."""
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(node):
            node["pattern"] = NO_NUL
        pending.extend(value for key, value in node.items() if key != "examples")
