"""What every request body has in common."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(item) for item in value)
    return False


class RequestBody(BaseModel):
    """A body a client sends: unknown fields are refused (a typo, or a server-owned
    field such as ``version``, is an error, not silently dropped), and so is the NUL
    character, which PostgreSQL cannot store in text. Numbers are finite: NaN and
    infinities are not JSON."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("text must not contain the NUL character")
        return data


def lowered(value: Any) -> Any:
    """Trimmed and lower-cased, before any pattern is checked: ``Rosa`` is ``rosa``."""
    return value.strip().lower() if isinstance(value, str) else value
