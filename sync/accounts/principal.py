"""Who is calling, with the role and scope read from the database for this request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from schemas.enums import Role

OFFICE_ROLES = frozenset({Role.admin, Role.coordinator})


@dataclass(frozen=True)
class Principal:
    """The caller of one request.

    ``sector_ids`` and ``community_ids`` are the user's own scope. Admins and
    coordinators see everything, whatever their rows say; ``sees_everything`` says so.
    """

    user_id: uuid.UUID
    username: str
    role: Role
    family_id: uuid.UUID | None
    device_id: uuid.UUID | None
    sector_ids: frozenset[uuid.UUID]
    community_ids: frozenset[uuid.UUID]

    @property
    def sees_everything(self) -> bool:
        return self.role in OFFICE_ROLES

    def has_role(self, *roles: Role) -> bool:
        return self.role in roles
