"""The one way a route answers a file: streamed as it is written, with its media type,
as an attachment named for what it holds; and how OpenAPI is told so.

Lists answer JSON by default, or a CSV file with ``format=csv`` (``json_or_csv``);
exports answer only a file (``file_only``).
"""

from collections.abc import Iterable
from typing import Any

from fastapi.responses import StreamingResponse

from sync.platform.csv_files import CSV_MEDIA_TYPE

Responses = dict[int | str, dict[str, Any]]

JSON_OR_CSV = "JSON, or CSV with `format=csv`."


def json_or_csv(description: str = JSON_OR_CSV) -> Responses:
    """The ``responses`` of a route answering JSON, or a CSV file when asked."""
    return {200: {"content": {"text/csv": {}}, "description": description}}


def file_only(media_type: str, description: str) -> Responses:
    """The ``responses`` of a route that answers only a file of ``media_type``."""
    return {200: {"description": description, "content": {media_type: {}}}}


def attachment(
    pieces: Iterable[str], filename: str, *, media_type: str = CSV_MEDIA_TYPE
) -> StreamingResponse:
    """``pieces`` streamed as the file ``filename`` (a CSV file unless told otherwise)."""
    return StreamingResponse(
        pieces,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
