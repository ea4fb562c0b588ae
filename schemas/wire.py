"""What every request body has in common."""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError


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
            raise PydanticCustomError("nul_character", "text must not contain the NUL character")
        return data


def lowered(value: Any) -> Any:
    """Trimmed and lower-cased, before any pattern is checked: ``Rosa`` is ``rosa``."""
    return value.strip().lower() if isinstance(value, str) else value


# Some text that is not all blanks, and no NUL: what ``strip_whitespace`` and
# ``min_length=1`` check, as a JSON Schema pattern. Pydantic trims Unicode's White_Space,
# which is ECMA's \s with \x85 and without \ufeff.
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000\\u0085][^\\u0000]*$"


@dataclass(frozen=True)
class Documented:
    """Adds ``pattern`` to a type's JSON Schema where pydantic checks it otherwise."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


# Text trimmed of blanks at both ends, at least one character left; give it a
# ``max_length`` where it is used: ``Annotated[TrimmedText, StringConstraints(max_length=…)]``.
TrimmedText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), Documented(NOT_BLANK)
]
