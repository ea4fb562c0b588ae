"""Records (SQLModel tables) and wire models (pydantic), each protocol field documented once.

Importing this package registers every table on ``SQLModel.metadata``, which Alembic
compares against the migrations. ``schemas`` imports neither ``sync`` nor ``api``.
"""

from schemas.accounts import (
    Device,
    LoginFailure,
    RefreshFamily,
    RefreshToken,
    User,
    UserCommunity,
    UserSector,
)
from schemas.reference import Community, ObservationCategory, Sector

__all__ = [
    "Community",
    "Device",
    "LoginFailure",
    "ObservationCategory",
    "RefreshFamily",
    "RefreshToken",
    "Sector",
    "User",
    "UserCommunity",
    "UserSector",
]
