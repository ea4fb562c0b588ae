"""The benchmark's programme, set up over the real HTTP API as an office would.

An admin makes sectors (with boundaries), communities, observation categories and
users; devices are enrolled with one-time codes, as tablets are. The fleet:

- ``tablets``: the K load devices, rangers and extension workers in turn. Every
  ranger patrols the *live* sector (the first) and two others; every extension
  worker works in four communities.
- ``office``: a coordinator's tablet that edits field records (for merges and
  conflicts); ``importer``: the device seeded history is recorded as made by;
  ``watcher``: a ranger of the live sector alone, whose tablet pulls incrementally.
- fresh coordinator devices for initial pulls, made when asked (``fresh_device``).
"""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import generator
from bench.generator import CommunityPlace
from bench.workload import EXTENSION_WORKER, RANGER, SectorPlace

SECTORS = 6
COMMUNITIES_PER_SECTOR = 3
COMMUNITIES_PER_WORKER = 4
HTTP_TIMEOUT = 60.0


@dataclass
class DeviceAccess:
    """An enrolled device: who it is and the token it syncs with."""

    device_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    role: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class TabletAccess:
    device: DeviceAccess
    sector_indexes: list[int] = field(default_factory=list)
    community_indexes: list[int] = field(default_factory=list)


@dataclass
class Fleet:
    api: str
    admin_token: str
    sectors: list[SectorPlace]
    communities: list[CommunityPlace]
    categories: list[dict[str, Any]]
    tablets: list[TabletAccess]
    office: DeviceAccess
    importer: DeviceAccess
    watcher: DeviceAccess
    coordinator_id: uuid.UUID
    password: str

    @property
    def seeded_sectors(self) -> list[SectorPlace]:
        """Where history is seeded: everywhere but the live sector, so that the
        watcher's incremental pulls see what is pushed, not what is seeded."""
        return self.sectors[1:]


class SetupFailed(RuntimeError):
    pass


def _checked(answer: httpx.Response, status: int = 201) -> Any:
    if answer.status_code != status:
        raise SetupFailed(
            f"{answer.request.method} {answer.request.url.path}: "
            f"{answer.status_code} {answer.text[:500]}"
        )
    return answer.json()


def set_up(api: str, *, admin: str, password: str, devices: int, seed: str) -> Fleet:
    """Everything the run needs, made through the API by the admin ``admin``."""
    rng = random.Random(f"bench-fleet:{seed}")
    with httpx.Client(base_url=api, timeout=HTTP_TIMEOUT) as client:
        token = _checked(
            client.post("/auth/token", data={"username": admin, "password": password}), 200
        )["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        sectors = []
        for body, box in zip(
            generator.sectors(SECTORS), generator.sector_boxes(SECTORS), strict=True
        ):
            made = _checked(client.post("/sectors", json=body))
            sectors.append(SectorPlace(uuid.UUID(made["id"]), box))
        communities = []
        for body in generator.communities(rng, SECTORS, COMMUNITIES_PER_SECTOR):
            sector = sectors[body.pop("sector_index")]
            made = _checked(client.post("/communities", json={**body, "sector_id": str(sector.id)}))
            communities.append(CommunityPlace(uuid.UUID(made["id"]), sector.box))
        categories = generator.observation_categories()
        for category in categories:
            _checked(client.post("/observation-categories", json=category))

        user_password = secrets.token_urlsafe(18)

        def user(username: str, role: str, **scope: list[str]) -> uuid.UUID:
            body = {
                "username": username,
                "password": user_password,
                "full_name": username.replace("-", " ").title(),
                "role": role,
                **scope,
            }
            return uuid.UUID(_checked(client.post("/users", json=body))["id"])

        tablets = []
        rangers = workers = 0
        for index in range(devices):
            if index % 2 == 0:
                others = [1 + (rangers + k) % (SECTORS - 1) for k in (0, 1)]
                chosen = [0, *others]
                username = f"guardaparque-{rangers + 1:02d}"
                user_id = user(username, RANGER, sector_ids=[str(sectors[i].id) for i in chosen])
                device = enroll(client, user_id, username, RANGER, label=f"Tablet {username}")
                tablets.append(TabletAccess(device, sector_indexes=chosen))
                rangers += 1
            else:
                chosen = [
                    (COMMUNITIES_PER_WORKER * workers + k) % len(communities)
                    for k in range(COMMUNITIES_PER_WORKER)
                ]
                username = f"promotor-{workers + 1:02d}"
                user_id = user(
                    username,
                    EXTENSION_WORKER,
                    community_ids=[str(communities[i].id) for i in chosen],
                )
                device = enroll(
                    client, user_id, username, EXTENSION_WORKER, label=f"Tablet {username}"
                )
                tablets.append(TabletAccess(device, community_indexes=chosen))
                workers += 1
        office = enroll(client, user("oficina", "coordinator"), "oficina", "coordinator")
        importer = enroll(client, user("importacion", "coordinator"), "importacion", "coordinator")
        watcher_id = user("vigilancia", RANGER, sector_ids=[str(sectors[0].id)])
        watcher = enroll(client, watcher_id, "vigilancia", RANGER)
        coordinator_id = user("coordinacion", "coordinator")
    return Fleet(
        api=api,
        admin_token=token,
        sectors=sectors,
        communities=communities,
        categories=categories,
        tablets=tablets,
        office=office,
        importer=importer,
        watcher=watcher,
        coordinator_id=coordinator_id,
        password=user_password,
    )


def enroll(
    client: httpx.Client, user_id: uuid.UUID, username: str, role: str, label: str = "Tablet"
) -> DeviceAccess:
    """A one-time code made by the admin (``client``), traded for a device's tokens."""
    code = _checked(client.post("/devices", json={"label": label, "user_id": str(user_id)}))
    # The tablet has no token yet: it enrolls on its own, not with the admin's.
    tokens = _checked(
        httpx.post(
            str(client.base_url.join("devices/enroll")),
            json={"enrollment_code": code["enrollment_code"]},
            timeout=HTTP_TIMEOUT,
        ),
        200,
    )
    return DeviceAccess(
        uuid.UUID(tokens["device_id"]), user_id, username, role, tokens["access_token"]
    )


def fresh_device(fleet: Fleet, label: str) -> DeviceAccess:
    """A newly enrolled tablet of the coordinator: it has never pulled."""
    with httpx.Client(
        base_url=fleet.api,
        timeout=HTTP_TIMEOUT,
        headers={"Authorization": f"Bearer {fleet.admin_token}"},
    ) as client:
        return enroll(client, fleet.coordinator_id, "coordinacion", "coordinator", label=label)


# ---------------------------------------------------------------- who reviews patrols


@dataclass
class UserAccess:
    """A user signed in with a password, as at the office's browser (no device)."""

    user_id: uuid.UUID
    username: str
    role: str
    access_token: str
    sector_index: int | None = None  # a ranger lead's one sector

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class ReviewStaff:
    """For the review benchmark: in every sector (``Fleet.sectors``' order) its ranger
    lead, signed in, and its rangers, who walk the seeded patrols; and a coordinator,
    signed in, who sees every sector."""

    leads: list[UserAccess]
    crews: list[list[uuid.UUID]]
    coordinator: UserAccess


def review_staff(fleet: Fleet, *, rangers_per_sector: int) -> ReviewStaff:
    """A ranger lead and ``rangers_per_sector`` rangers in each sector, made by the
    admin over the API; the leads and the coordinator sign in with their passwords."""
    with httpx.Client(
        base_url=fleet.api,
        timeout=HTTP_TIMEOUT,
        headers={"Authorization": f"Bearer {fleet.admin_token}"},
    ) as client:

        def user(username: str, role: str, sector: SectorPlace) -> uuid.UUID:
            body = {
                "username": username,
                "password": fleet.password,
                "full_name": username.replace("-", " ").title(),
                "role": role,
                "sector_ids": [str(sector.id)],
            }
            return uuid.UUID(_checked(client.post("/users", json=body))["id"])

        leads: list[UserAccess] = []
        crews: list[list[uuid.UUID]] = []
        for index, sector in enumerate(fleet.sectors):
            code = f"s{index + 1:02d}"
            username = f"jefe-{code}"
            lead_id = user(username, "ranger_lead", sector)
            leads.append(UserAccess(lead_id, username, "ranger_lead", "", sector_index=index))
            crews.append(
                [
                    user(f"guardaparque-{code}-{number + 1:02d}", RANGER, sector)
                    for number in range(rangers_per_sector)
                ]
            )
        for lead in leads:
            lead.access_token = sign_in(client, lead.username, fleet.password)
        coordinator = UserAccess(
            fleet.coordinator_id,
            "coordinacion",
            "coordinator",
            sign_in(client, "coordinacion", fleet.password),
        )
    return ReviewStaff(leads, crews, coordinator)


def sign_in(client: httpx.Client, username: str, password: str) -> str:
    answer = httpx.post(
        str(client.base_url.join("auth/token")),
        data={"username": username, "password": password},
        timeout=HTTP_TIMEOUT,
    )
    token: str = _checked(answer, 200)["access_token"]
    return token
