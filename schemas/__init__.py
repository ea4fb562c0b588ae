"""Records (SQLModel tables) and wire models (pydantic), each protocol field documented once.

Importing this package registers every table on ``SQLModel.metadata``, which Alembic
compares against the migrations. ``schemas`` imports neither ``sync`` nor ``api``.
"""

from schemas.accounts import (
    ConsoleSession,
    Device,
    EnrollmentFailure,
    LoginFailure,
    RefreshFamily,
    RefreshToken,
    User,
    UserCommunity,
    UserSector,
)
from schemas.attachments import Attachment, AttachmentLink, AttachmentOwed, AttachmentUpload
from schemas.audit import AuditAnchor, AuditBlock
from schemas.patrols import PatrolReview
from schemas.records import (
    Agreement,
    Attendance,
    Household,
    Observation,
    Patrol,
    Person,
    TrackSegment,
    TrainingSession,
)
from schemas.reference import Community, ObservationCategory, Sector
from schemas.registry import PersonalDataAccess, PersonMerge
from schemas.sync import (
    Conflict,
    DeferredChange,
    RecordVersion,
    RefusedChange,
    SyncChange,
    SyncClock,
    SyncEntry,
    SyncExit,
)

__all__ = [
    "Agreement",
    "Attachment",
    "AttachmentLink",
    "AttachmentOwed",
    "AttachmentUpload",
    "Attendance",
    "AuditAnchor",
    "AuditBlock",
    "Community",
    "Conflict",
    "ConsoleSession",
    "DeferredChange",
    "Device",
    "EnrollmentFailure",
    "Household",
    "LoginFailure",
    "Observation",
    "ObservationCategory",
    "Patrol",
    "PatrolReview",
    "Person",
    "PersonMerge",
    "PersonalDataAccess",
    "RecordVersion",
    "RefreshFamily",
    "RefreshToken",
    "RefusedChange",
    "Sector",
    "SyncChange",
    "SyncClock",
    "SyncEntry",
    "SyncExit",
    "TrackSegment",
    "TrainingSession",
    "User",
    "UserCommunity",
    "UserSector",
]
