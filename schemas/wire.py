"""What every request body has in common."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


def has_nul(value: Any) -> bool:
    """Whether any text in a parsed JSON document holds NUL. Walked with a stack, not by
    recursion: a document nested thousands of levels deep is an answer, not a crash."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
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
