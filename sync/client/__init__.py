"""The reference device client: what a tablet does, in Python, over HTTP.

``DeviceClient`` (``device``) drives enrollment, push and pull; ``store`` is the local
SQLite file it keeps (records, outbox, meta, the local view); ``connection`` its HTTP
calls (retries with backoff, token refresh, the server's problem documents);
``errors`` what it raises. Callers import from here: ``from sync.client import
DeviceClient``.
"""

from schemas.accounts import Enrollment
from sync.client.device import DeviceClient
from sync.client.errors import AuthFailed, NotEnrolled, SyncError, Unreachable
from sync.client.store import LocalRecord, Pending

__all__ = [
    "AuthFailed",
    "DeviceClient",
    "Enrollment",
    "LocalRecord",
    "NotEnrolled",
    "Pending",
    "SyncError",
    "Unreachable",
]
