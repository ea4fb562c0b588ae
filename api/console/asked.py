"""What a coordinator's page is asked, read by the API's own query models, and the CSV
file it hands out: the one the API's service writes for the same question.

A page's query string is the API's, with what a plain HTML form adds: empty fields
(a filter left blank) and the console's own parameters, dropped before the model reads
it, so that unknown parameters are refused as the API refuses them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from api.answers import attachment
from api.console.web import Viewer
from schemas.reference import CommunityRead, SectorRead
from sync.reference import service as reference

Query = TypeVar("Query", bound=BaseModel)

CONSOLE_ONLY = frozenset({"lang", "done"})
"""Parameters of the console itself, never the API's: the language, and what the page
says was just done (after a form, ``?done=merged``)."""


def asked(request: Request, model: type[Query], **fixed: Any) -> Query:
    """The page's question as ``model`` reads it: the query string less blank fields and
    the console's own parameters, with ``fixed`` set over it. A question the model
    refuses is the console's 422 page."""
    values: dict[str, Any] = {
        name: value
        for name, value in request.query_params.items()
        if name not in CONSOLE_ONLY and value.strip() != ""
    }
    values.update(fixed)
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


def flag(request: Request, name: str) -> bool:
    """A checkbox of a form sent by GET: ticked, or absent."""
    return request.query_params.get(name, "") in ("true", "on", "1")


def download(pieces: Iterable[str], filename: str) -> StreamingResponse:
    """The API's CSV file, streamed as the API streams it; kept by no cache."""
    answer = attachment(pieces, filename)
    answer.headers["Cache-Control"] = "no-store"
    return answer


def places(session: Session, viewer: Viewer) -> dict[str, list[SectorRead] | list[CommunityRead]]:
    """The sectors and communities the viewer may filter by."""
    return {
        "sectors": reference.list_sectors(session, principal=viewer.principal),
        "communities": reference.list_communities(session, principal=viewer.principal),
    }
