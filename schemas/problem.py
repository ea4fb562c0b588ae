"""The error body of every failed request: RFC 9457 problem details, plus a stable ``code``."""

from typing import Any

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    """One reason a request body or a query was refused."""

    field: str = Field(description="Where: a dotted path into the body or the query name.")
    code: str = Field(description="A stable machine code, such as `missing` or `too_long`.")
    message: str


class Problem(BaseModel):
    type: str = Field(
        description="A URI naming the kind of problem: `urn:fieldsync:problem:<code>`."
    )
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine code; see docs/errors.md.")
    instance: str | None = None
    errors: list[FieldError] | None = None
    extra: dict[str, Any] | None = None
