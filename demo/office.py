"""The office's part, over HTTP as an admin does it: places, categories, people, tablets.

Each record is found before it is made (sectors by code, communities by name and
sector, categories by key, users by username), so that the demo can run again on a
database that holds its reference data already (``--force``, or after a failed run).
A user found again gets the demo's role, scope and new password.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bench import generator
from bench.generator import Box, CommunityPlace
from demo.tablet import DemoFailed, Enrolled
from demo.targets import COMMUNITIES, RANGERS, SECTORS, WORKERS, seeded

COORDINATOR = "demo-coordinadora"
RANGER_LEAD = "demo-jefe"
ADMIN = "demo-admin"


@dataclass(frozen=True)
class SectorPlace:
    id: uuid.UUID
    code: str
    box: Box


@dataclass
class Place:
    """A community: its id and box (for the generator's stories, with the people
    registered there), its name and the sector it lies in."""

    community: CommunityPlace
    name: str
    sector: int

    @property
    def id(self) -> uuid.UUID:
        return self.community.id


@dataclass(frozen=True)
class Member:
    """A user of the programme, and the scope it works in (indexes of ``places`` or
    ``sectors``)."""

    user_id: uuid.UUID
    username: str
    full_name: str
    role: str
    scope: tuple[int, ...]


@dataclass
class Staff:
    coordinator: Member
    ranger_lead: Member
    workers: list[Member]  # scope: four home communities, then the one visited
    rangers: list[Member]  # scope: two sectors
    password: str  # every demo user's


def checked(answer: httpx.Response, *statuses: int) -> Any:
    if answer.status_code not in (statuses or (200,)):
        raise DemoFailed(
            f"{answer.request.method} {answer.request.url.path} answered "
            f"{answer.status_code} {answer.text[:500]}"
        )
    return answer.json()


def sign_in(http: httpx.Client, username: str, password: str) -> dict[str, str]:
    """The ``Authorization`` header of a person signed in with a password."""
    tokens = checked(http.post("/auth/token", data={"username": username, "password": password}))
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def places(
    http: httpx.Client, admin: dict[str, str], seed: str
) -> tuple[list[SectorPlace], list[Place], list[dict[str, Any]]]:
    """The sectors, communities and observation categories, found or made."""
    rng = seeded(f"demo:{seed}:places")
    found = {sector["code"]: sector for sector in checked(http.get("/sectors", headers=admin))}
    sectors = []
    for body, box in zip(generator.sectors(SECTORS), generator.sector_boxes(SECTORS), strict=True):
        sector = found.get(body["code"]) or checked(
            http.post("/sectors", json=body, headers=admin), 201
        )
        sectors.append(SectorPlace(uuid.UUID(sector["id"]), body["code"], box))
    known = {
        (community["name"], community["sector_id"]): community
        for community in checked(http.get("/communities", headers=admin))
    }
    made = []
    per_sector = -(-COMMUNITIES // SECTORS)
    for body in generator.communities(rng, SECTORS, per_sector)[:COMMUNITIES]:
        sector = sectors[body.pop("sector_index")]
        community = known.get((body["name"], str(sector.id))) or checked(
            http.post("/communities", json={**body, "sector_id": str(sector.id)}, headers=admin),
            201,
        )
        place = CommunityPlace(uuid.UUID(community["id"]), sector.box)
        made.append(Place(place, body["name"], sectors.index(sector)))
    categories = generator.observation_categories()
    keys = {c["key"] for c in checked(http.get("/observation-categories", headers=admin))}
    for category in categories:
        if category["key"] not in keys:
            checked(http.post("/observation-categories", json=category, headers=admin), 201)
    return sectors, made, categories


def staff(
    http: httpx.Client,
    admin: dict[str, str],
    *,
    seed: str,
    password: str,
    sectors: list[SectorPlace],
    places: list[Place],
) -> Staff:
    """The coordinator, the ranger lead, the extension workers and the rangers."""
    rng = seeded(f"demo:{seed}:staff")
    existing = {user["username"]: user for user in checked(http.get("/users", headers=admin))}

    def member(username: str, role: str, full_name: str, scope: tuple[int, ...] = ()) -> Member:
        body: dict[str, Any] = {"full_name": full_name, "role": role, "password": password}
        if role in ("ranger", "ranger_lead"):
            body["sector_ids"] = [str(sectors[i].id) for i in scope]
        if role == "extension_worker":
            body["community_ids"] = [str(places[i].id) for i in scope]
        if username in existing:
            user_id = existing[username]["id"]
            checked(http.patch(f"/users/{user_id}", json={**body, "active": True}, headers=admin))
        else:
            made = checked(
                http.post("/users", json={**body, "username": username}, headers=admin), 201
            )
            user_id = made["id"]
        return Member(uuid.UUID(user_id), username, full_name, role, scope)

    def name(given: tuple[str, ...]) -> str:
        return (
            f"{rng.choice(given)} {rng.choice(generator.SURNAMES)} {rng.choice(generator.SURNAMES)}"
        )

    per_worker = COMMUNITIES // WORKERS
    workers = []
    for index in range(WORKERS):
        home = tuple(range(per_worker * index, per_worker * (index + 1)))
        visited = per_worker * ((index + 1) % WORKERS)  # the next worker's first community
        given = generator.GIVEN_FEMALE if index % 2 == 0 else generator.GIVEN_MALE
        workers.append(
            member(
                f"demo-promotor-{index + 1:02d}", "extension_worker", name(given), (*home, visited)
            )
        )
    rangers = [
        member(
            f"demo-guardaparque-{index + 1:02d}",
            "ranger",
            name(generator.GIVEN_MALE),
            (index % SECTORS, (index + 1) % SECTORS),
        )
        for index in range(RANGERS)
    ]
    return Staff(
        coordinator=member(COORDINATOR, "coordinator", "Rocío Guevara Tafur"),
        ranger_lead=member(RANGER_LEAD, "ranger_lead", "Jorge Tapia Huamán", tuple(range(SECTORS))),
        workers=workers,
        rangers=rangers,
        password=password,
    )


def enroll(http: httpx.Client, admin: dict[str, str], member: Member) -> Enrolled:
    """A one-time code made by the admin, traded by the tablet for its tokens."""
    code = checked(
        http.post(
            "/devices",
            json={"label": f"Tablet {member.username}", "user_id": str(member.user_id)},
            headers=admin,
        ),
        201,
    )
    tokens = checked(
        http.post("/devices/enroll", json={"enrollment_code": code["enrollment_code"]})
    )
    return Enrolled(
        uuid.UUID(tokens["device_id"]),
        member.user_id,
        tokens["access_token"],
        tokens["refresh_token"],
    )
