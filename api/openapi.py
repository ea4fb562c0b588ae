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
    app.openapi_schema = spec
    return spec
