"""What a refused form says: each field's problem, and each service error, as a message
of the catalogues, for the page that shows the form again with what was typed.

The console validates a form with the API's own request models and calls the API's
services, so a form is refused for exactly what the API refuses; these turn the
pydantic errors and the services' error codes into sentences a person can act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from pydantic import ValidationError
from sqlmodel import Session

from api.console.i18n import N_
from api.console.web import gettext
from sync.platform.errors import Conflict, FieldsyncError, Unprocessable

# What is said of a field the messages of the page do not name.
CHECK_FIELD = N_("Check this field.")
CHECK_FORM = N_("The form could not be saved: see the fields marked below.")


class Unreadable(ValueError):
    """A field the form sent that cannot even be read (JSON that is not JSON)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"the field {field} cannot be read")
        self.field = field


# What a form's page catches and shows on the form; anything else is an error page.
REFUSALS = (ValidationError, Unreadable, Conflict, Unprocessable)


def refusal(
    request: Request,
    session: Session,
    error: ValidationError | Unreadable | Conflict | Unprocessable,
    messages: Mapping[str, str],
) -> tuple[dict[str, str], int]:
    """What a refused form says of each field (``messages`` by field name and by the
    services' error codes), and the page's status: 409 for a conflict, else 422."""
    if isinstance(error, ValidationError):
        return field_errors(request, error, messages), 422
    if isinstance(error, Unreadable):
        return {error.field: gettext(request, messages.get(error.field, CHECK_FIELD))}, 422
    refused(session)
    return service_errors(request, error, messages), 409 if isinstance(error, Conflict) else 422


def field_errors(
    request: Request, error: ValidationError, messages: Mapping[str, str]
) -> dict[str, str]:
    """One message per field refused by a request model (``sector_ids.2`` is
    ``sector_ids``), in the viewer's language."""
    found: dict[str, str] = {}
    for problem in error.errors():
        field = str(problem["loc"][0]) if problem["loc"] else ""
        found.setdefault(field, gettext(request, messages.get(field, CHECK_FIELD)))
    return found


def service_errors(
    request: Request, error: FieldsyncError, messages: Mapping[str, str]
) -> dict[str, str]:
    """One message per field a service refused, by the error's code (or its fields'
    codes); the key ``""`` holds what is said of the whole form."""
    found: dict[str, str] = {}
    for problem in error.errors or []:
        field = problem.field.split(".")[0]
        message = messages.get(problem.code) or messages.get(field) or CHECK_FIELD
        found.setdefault(field, gettext(request, message))
    if error.code in messages:
        found.setdefault("", gettext(request, messages[error.code]))
    return found


def refused(session: Session) -> None:
    """Undo what a refused service call may have written: the page that shows the
    form again must not commit half of it."""
    session.rollback()


def form_context(request: Request, **context: Any) -> dict[str, Any]:
    """A form's page: what was typed, each field's problem (``errors``), and the
    sentence at the top of a refused form (``alert``)."""
    errors = context.pop("errors", None) or {}
    alert = (errors.get("") or gettext(request, CHECK_FORM)) if errors else None
    return {**context, "errors": errors, "alert": alert}
