"""The reference device client: what a tablet does, in Python, over HTTP.

``DeviceClient`` (``device``) drives enrollment, push and pull; ``store`` is the local
SQLite file it keeps (records, outbox, meta, the local view, the attached files);
``connection`` its HTTP calls (retries with backoff, token refresh, the server's
problem documents); ``files`` the attached files and their resumable tus uploads,
made before each push; ``errors`` what it raises (and ``files.AttachmentRefused``, a
``SyncError``, for a file whose bytes will not do). Callers import from here:
``from sync.client import DeviceClient``.
"""

from schemas.accounts import Enrollment
from sync.client.device import DeviceClient
from sync.client.errors import AppTooOld, AuthFailed, NotEnrolled, SyncError, Unreachable
from sync.client.files import AttachmentRefused, OwedFiles
from sync.client.store import LocalFile, LocalRecord, Pending

__all__ = [
    "AppTooOld",
    "AttachmentRefused",
    "AuthFailed",
    "DeviceClient",
    "Enrollment",
    "LocalFile",
    "LocalRecord",
    "NotEnrolled",
    "OwedFiles",
    "Pending",
    "SyncError",
    "Unreachable",
]
