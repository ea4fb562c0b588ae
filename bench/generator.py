"""Realistic, deterministic field data of the Alto Mayo Protected Forest.

Everything here is a pure function of a ``random.Random``: the same seed gives the
same sectors, people, patrols and tracks, byte for byte, on any machine. Nothing
here knows HTTP or a database, so the benchmark, the seeder, and later a demo data
set or a load test of 10,000 patrols can all draw from it.

- **Places**: sectors of the forest around -5.7° lat, -77.5° lon, each a GeoJSON
  polygon; communities in them (settlements and Awajún native communities).
- **People**: Spanish and Awajún given names and surnames, with their accents;
  households, conservation agreements, training sessions and attendance.
- **Patrols**: a ranger's day on foot: a track of points one minute apart at a
  walking pace, cut into segments of ~100 points, with observations of threats and
  wildlife whose attributes fit their category. A seeded history of millions keeps
  to each sector's trail (``TrailWalker``), whose points are made once.

Record functions answer ``fields`` as a device sends them (JSON form, RFC 3339 times
with the Peruvian offset); *stories* string records together the way they happen in
the field (a household with its people and agreement; a patrol with its track and
observations), each record with the scope it lies in.
"""

from __future__ import annotations

import itertools
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from typing import Any

import orjson

PERU = timezone(timedelta(hours=-5), "PET")
# The day the generated history starts; records are spread over the months after it.
EPOCH = datetime(2026, 3, 2, 6, 0, tzinfo=PERU)

# ---------------------------------------------------------------- names

GIVEN_FEMALE = (
    "María", "Rosa", "Lucía", "Inés", "Nélida", "Ángela", "Sofía", "Elena", "Yolanda",
    "Gladys", "Marisol", "Flor", "Julia", "Teresa", "Verónica", "Dámaris", "Noemí",
    "Rocío", "Milagros", "Zoila",
    # Awajún
    "Yampis", "Tsamík", "Ujúkam", "Nantu", "Dekás", "Wampíu", "Shuwi", "Kayáp",
)  # fmt: skip
GIVEN_MALE = (
    "José", "Jesús", "Ángel", "Raúl", "Víctor", "Jorge", "Efraín", "Nicolás", "Julián",
    "Andrés", "Rubén", "Hernán", "Segundo", "Wilmer", "Elías", "Tomás", "Óscar",
    "Aurelio", "Germán", "Adán",
    # Awajún
    "Dáwig", "Tsamajáin", "Wajai", "Shimpu", "Tuyas", "Kajékui", "Bakuants", "Nugkai",
    "Tiwi", "Yagkug",
)  # fmt: skip
SURNAMES = (
    "García", "Tapia", "Quispe", "Vásquez", "Rojas", "Pérez", "Fernández", "Díaz",
    "Sánchez", "Chávez", "Muñoz", "Guevara", "Tafur", "Huamán", "Cieza", "Mego",
    "Bardález", "Saldaña", "Tenorio", "Delgado", "Altamirano", "Peña", "Núñez", "Campos",
    "Chuquizuta", "Cubas", "Julca", "Ocaña",
    # Awajún
    "Tsamajáin", "Sejekam", "Wampagkit", "Shimpukat", "Yagkikat", "Dekentai", "Chumpi",
    "Antuash", "Ukuncham", "Apikai", "Danducho", "Wajajai",
)  # fmt: skip
# Spellings two tablets disagree on: what a conflict on a name looks like.
RESPELLED = {"Vásquez": "Vasquez", "Núñez": "Nuñez", "Tsamajáin": "Tsamajain", "Díaz": "Diaz"}

SECTOR_NAMES = (
    ("AM-01", "Sector Río Mayo", "protection"),
    ("AM-02", "Sector Serranoyacu", "protection"),
    ("AM-03", "Sector Aguas Verdes", "recovery"),
    ("AM-04", "Sector Venceremos", "protection"),
    ("AM-05", "Sector Naranjillo", "special_use"),
    ("AM-06", "Sector El Afluente", "recovery"),
    ("AM-07", "Sector Alto Mayo", "protection"),
    ("AM-08", "Sector Yuracyacu", "special_use"),
)
COMMUNITY_NAMES = (
    ("Nueva Alianza", "settlement"), ("San Francisco de Río Mayo", "settlement"),
    ("Alto Naranjillo", "native_community"), ("Shampuyacu", "native_community"),
    ("La Primavera", "hamlet"), ("Aguas Claras", "settlement"),
    ("Morroyacu", "native_community"), ("Santa Elena", "hamlet"),
    ("Nuevo Edén", "settlement"), ("Huascayacu", "native_community"),
    ("Túpac Amaru", "hamlet"), ("El Paraíso", "settlement"),
    ("Bajo Naranjillo", "native_community"), ("Las Orquídeas", "hamlet"),
    ("Nuevo San Martín", "settlement"), ("Cachiyacu", "native_community"),
    ("La Libertad", "settlement"), ("Miraflores", "hamlet"),
    ("Nuevo Jaén", "settlement"), ("Bello Horizonte", "hamlet"),
    ("San Pedro", "settlement"), ("Dos de Mayo", "hamlet"),
    ("Jorge Chávez", "settlement"), ("Yarau", "native_community"),
)  # fmt: skip

# The forest's box: sectors tile it. Lat -5.95..-5.45, lon -77.95..-77.15.
SOUTH, NORTH, WEST, EAST = -5.95, -5.45, -77.95, -77.15

# ---------------------------------------------------------------- observation categories


def observation_categories() -> list[dict[str, Any]]:
    """The categories rangers observe, with typed attributes (``POST /observation-categories``)."""
    return [
        {
            "key": "threat.logging.timber",
            "name_es": "Tala de madera",
            "name_en": "Timber logging",
            "attributes": [
                {
                    "key": "species",
                    "type": "list",
                    "options": ["cedro", "caoba", "tornillo", "ishpingo", "moena", "otro"],
                    "required": True,
                },
                {"key": "trees_count", "type": "number", "required": True},
                {"key": "volume_m3", "type": "number"},
                {"key": "fresh", "type": "bool"},
            ],
        },
        {
            "key": "threat.clearing.agriculture",
            "name_es": "Desbosque para chacra",
            "name_en": "Clearing for farming",
            "attributes": [
                {"key": "area_ha", "type": "number", "required": True},
                {
                    "key": "crop",
                    "type": "list",
                    "options": ["cafe", "maiz", "pasto", "platano", "otro"],
                },
                {"key": "burned", "type": "bool"},
            ],
        },
        {
            "key": "threat.fire",
            "name_es": "Incendio",
            "name_en": "Fire",
            "attributes": [
                {"key": "area_ha", "type": "number"},
                {"key": "active", "type": "bool", "required": True},
            ],
        },
        {
            "key": "threat.hunting",
            "name_es": "Caza",
            "name_en": "Hunting",
            "attributes": [
                {
                    "key": "evidence",
                    "type": "list",
                    "options": ["disparo", "trampa", "campamento", "restos"],
                    "required": True,
                },
                {"key": "species", "type": "text"},
                {"key": "firearm", "type": "bool"},
            ],
        },
        {
            "key": "threat.settlement.new",
            "name_es": "Nuevo asentamiento",
            "name_en": "New settlement",
            "attributes": [
                {"key": "dwellings", "type": "number", "required": True},
                {"key": "occupied", "type": "bool"},
                {"key": "first_seen", "type": "date"},
            ],
        },
        {
            "key": "wildlife.mammal.sighting",
            "name_es": "Avistamiento de mamífero",
            "name_en": "Mammal sighting",
            "attributes": [
                {
                    "key": "species",
                    "type": "list",
                    "options": [
                        "Lagothrix flavicauda",
                        "Ateles belzebuth",
                        "Tremarctos ornatus",
                        "Tapirus terrestris",
                        "Pecari tajacu",
                        "Leopardus pardalis",
                    ],
                    "required": True,
                },
                {"key": "count", "type": "number"},
                {
                    "key": "evidence",
                    "type": "list",
                    "options": ["visto", "oido", "huellas", "heces"],
                },
            ],
        },
        {
            "key": "wildlife.bird.sighting",
            "name_es": "Avistamiento de ave",
            "name_en": "Bird sighting",
            "attributes": [
                {
                    "key": "species",
                    "type": "list",
                    "options": [
                        "Xenoglaux loweryi",
                        "Rupicola peruvianus",
                        "Heliangelus regalis",
                        "Pauxi unicornis",
                    ],
                    "required": True,
                },
                {"key": "count", "type": "number"},
            ],
        },
    ]


def category_attributes(rng: random.Random, category: dict[str, Any]) -> dict[str, Any]:
    """Attribute values that fit ``category``: every required one, some optional ones."""
    values: dict[str, Any] = {}
    for attribute in category["attributes"]:
        if not attribute.get("required") and rng.random() < 0.4:
            continue
        kind = attribute["type"]
        if kind == "list":
            values[attribute["key"]] = rng.choice(attribute["options"])
        elif kind == "number":
            values[attribute["key"]] = (
                rng.randint(1, 30)
                if attribute["key"].endswith("count")
                else round(rng.uniform(0.1, 12.0), 2)
            )
        elif kind == "bool":
            values[attribute["key"]] = rng.random() < 0.5
        elif kind == "date":
            values[attribute["key"]] = (
                EPOCH.date() - timedelta(days=rng.randint(0, 90))
            ).isoformat()
        else:
            values[attribute["key"]] = rng.choice(("escopeta", "majás", "sajino", "venado"))
    return values


# ---------------------------------------------------------------- places


@dataclass(frozen=True)
class Box:
    """A sector's extent; its boundary polygon lies on it, points are drawn inside."""

    south: float
    north: float
    west: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def point(self, rng: random.Random) -> tuple[float, float]:
        return (
            round(rng.uniform(self.south, self.north), 6),
            round(rng.uniform(self.west, self.east), 6),
        )


def sector_boxes(count: int) -> list[Box]:
    """The forest's box cut into ``count`` cells, two rows, west to east."""
    rows = 1 if count < 4 else 2
    columns = math.ceil(count / rows)
    height = (NORTH - SOUTH) / rows
    width = (EAST - WEST) / columns
    boxes = []
    for index in range(count):
        row, column = divmod(index, columns)
        south = SOUTH + row * height
        west = WEST + column * width
        boxes.append(Box(south, south + height, west, west + width))
    return boxes


def boundary(box: Box) -> dict[str, Any]:
    """The sector's boundary as a GeoJSON Polygon ([lon, lat]), a closed ring."""
    ring = [
        [round(box.west, 6), round(box.south, 6)],
        [round(box.east, 6), round(box.south, 6)],
        [round(box.east, 6), round(box.north, 6)],
        [round(box.west, 6), round(box.north, 6)],
        [round(box.west, 6), round(box.south, 6)],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def sectors(count: int) -> list[dict[str, Any]]:
    """``POST /sectors`` bodies: ``count`` sectors tiling the forest, with boundaries."""
    if count > len(SECTOR_NAMES):
        raise ValueError(f"at most {len(SECTOR_NAMES)} sectors")
    return [
        {"code": code, "name": name, "zone": zone, "boundary": boundary(box)}
        for (code, name, zone), box in zip(SECTOR_NAMES, sector_boxes(count), strict=False)
    ]


def communities(rng: random.Random, sector_count: int, per_sector: int) -> list[dict[str, Any]]:
    """``POST /communities`` bodies without ``sector_id``, which the caller sets, and
    with ``sector_index``, the sector each lies in."""
    names = list(COMMUNITY_NAMES)
    rng.shuffle(names)
    made = []
    for index in range(sector_count * per_sector):
        name, kind = names[index % len(names)]
        if index >= len(names):
            name = f"{name} {index // len(names) + 1}"
        made.append(
            {
                "name": name,
                "kind": kind,
                "inside_protected_area": kind != "settlement" or rng.random() < 0.5,
                "sector_index": index % sector_count,
            }
        )
    return made


# ---------------------------------------------------------------- records


def new_id(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from ``rng``: made on the device, but reproducible."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def moment(value: datetime) -> str:
    """RFC 3339 with the offset the tablet's clock shows."""
    return value.astimezone(PERU).isoformat(timespec="seconds")


@dataclass
class Record:
    """One record as a device makes it: its type, id, fields, and the sector or
    community it lies in (for a track segment, its patrol's sector)."""

    entity: str
    id: uuid.UUID
    fields: dict[str, Any]
    scope: uuid.UUID
    recorded_at: datetime


@dataclass
class Person:
    id: uuid.UUID
    sex: str
    birth_year: int


@dataclass
class CommunityPlace:
    """What a story needs to know of a community."""

    id: uuid.UUID
    box: Box
    people: list[Person] = field(default_factory=list)


def person_fields(
    rng: random.Random, community_id: uuid.UUID, household_id: uuid.UUID | None, sex: str
) -> dict[str, Any]:
    given = rng.choice(GIVEN_FEMALE if sex == "female" else GIVEN_MALE)
    if rng.random() < 0.3:
        given = f"{given} {rng.choice(GIVEN_FEMALE if sex == 'female' else GIVEN_MALE)}"
    with_dni = rng.random() < 0.8
    fields: dict[str, Any] = {
        "given_names": given,
        "paternal_surname": rng.choice(SURNAMES),
        "maternal_surname": rng.choice(SURNAMES),
        "sex": sex,
        "birth_year": rng.randint(1950, 2008),
        "doc_type": "dni" if with_dni else "none",
        "community_id": str(community_id),
    }
    if with_dni:
        fields["doc_number"] = f"{rng.randint(40_000_000, 79_999_999)}"
    if rng.random() < 0.6:
        fields["phone"] = f"9{rng.randint(10_000_000, 99_999_999)}"
    if household_id is not None:
        fields["household_id"] = str(household_id)
    return fields


def agreement_terms(rng: random.Random) -> dict[str, Any]:
    """What a family commits to and receives, and its land: the same in every renewal."""
    total = round(rng.uniform(3, 40), 1)
    forest = round(total * rng.uniform(0.4, 0.8), 1)
    return {
        "area_total_ha": total,
        "area_forest_ha": forest,
        "area_coffee_ha": round((total - forest) * rng.uniform(0.3, 0.9), 1),
        "commitments": sorted(
            rng.sample(
                [
                    "no_primary_forest_clearing",
                    "no_farm_expansion",
                    "no_hunting_threatened_species",
                    "agroforestry",
                ],
                rng.randint(2, 4),
            )
        ),
        "benefits": sorted(
            rng.sample(
                ["technical_assistance", "coffee_market_access", "financial_training"],
                rng.randint(1, 3),
            )
        ),
    }


def household_story(rng: random.Random, community: CommunityPlace, when: datetime) -> list[Record]:
    """A family: its household, its members (3 to 6), and most of the time the
    conservation agreement its head signs."""
    household_id = new_id(rng)
    size = rng.randint(3, 6)
    people: list[tuple[uuid.UUID, dict[str, Any]]] = []
    for index in range(size):
        sex = ("male", "female")[index % 2] if index < 2 else rng.choice(("male", "female"))
        person_id = new_id(rng)
        people.append((person_id, person_fields(rng, community.id, household_id, sex)))
        community.people.append(
            Person(person_id, sex, people[-1][1]["birth_year"])  # for attendance later
        )
    head = people[0][0]
    lat, lon = community.box.point(rng)
    relations = ["jefe", "esposa"] + ["hijo" if i % 2 else "hija" for i in range(size - 2)]
    household = {
        "code": f"HH-{rng.randint(1000, 9999)}",
        "community_id": str(community.id),
        "head_person_id": str(head),
        "location": {"lat": lat, "lon": lon},
        "members": [
            {"person_id": str(pid), "relation": relation}
            for (pid, _), relation in zip(people, relations, strict=True)
        ],
    }
    made = [Record("household", household_id, household, community.id, when)]
    made += [
        Record("person", pid, fields, community.id, when + timedelta(minutes=2 * (i + 1)))
        for i, (pid, fields) in enumerate(people)
    ]
    if rng.random() < 0.8:
        signed = (when + timedelta(days=rng.randint(0, 3))).date()
        code = f"AC-{signed.year}-{rng.randint(1, 9999):04d}"
        agreement = {
            "code": code,
            "household_id": str(household_id),
            "signatory_person_id": str(head),
            "community_id": str(community.id),
            "signed_on": signed.isoformat(),
            "valid_from": signed.isoformat(),
            "valid_until": date(signed.year + 3, signed.month, min(signed.day, 28)).isoformat(),
            "status": "draft",
            **agreement_terms(rng),
            "consent": {
                "method": rng.choice(("signature", "signature", "thumbprint", "witnessed_verbal")),
                "given_on": signed.isoformat(),
            },
        }
        made.append(
            Record("agreement", new_id(rng), agreement, community.id, when + timedelta(hours=1))
        )
    return made


TOPICS = {
    "coffee_production": (
        "Poda y renovación de cafetales",
        "Manejo de la roya",
        "Cosecha selectiva y beneficio húmedo",
        "Abonos orgánicos",
    ),
    "financial_skills": ("Ahorro familiar", "Registro de ingresos y gastos", "Crédito responsable"),
    "school_environmental_education": ("El bosque y el agua", "Fauna del Alto Mayo"),
    "other": ("Viveros forestales", "Apicultura"),
}


def training_story(
    rng: random.Random,
    community: CommunityPlace,
    when: datetime,
    facilitator_id: uuid.UUID,
    attendees: int,
) -> list[Record]:
    """A training session and the attendance of people of its community (people
    registered earlier; each person once per session)."""
    program = rng.choices(list(TOPICS), weights=(6, 3, 1, 1))[0]
    session_id = new_id(rng)
    starts = when.replace(hour=rng.choice((8, 9, 14, 15)), minute=0)
    session: dict[str, Any] = {
        "program": program,
        "topic": rng.choice(TOPICS[program]),
        "community_id": str(community.id),
        "venue": rng.choice(("Local comunal", "Escuela", "Parcela demostrativa", "Casa del apu")),
        "starts_at": moment(starts),
        "ends_at": moment(starts + timedelta(hours=rng.choice((2, 3, 4)))),
        "facilitators": [{"user_id": str(facilitator_id), "role": "facilitador"}],
        "status": "planned",
    }
    if program == "school_environmental_education":
        session["headcount"] = {"female": rng.randint(5, 30), "male": rng.randint(5, 30)}
    made = [Record("training_session", session_id, session, community.id, when)]
    chosen = rng.sample(community.people, min(attendees, len(community.people)))
    for index, person in enumerate(chosen):
        fields = {"session_id": str(session_id), "person_id": str(person.id), "role": "participant"}
        made.append(
            Record(
                "attendance",
                new_id(rng),
                fields,
                community.id,
                starts + timedelta(minutes=index),
            )
        )
    return made


@dataclass
class Walker:
    """A ranger on foot: a position, a heading, a clock, kept inside a sector's box."""

    box: Box
    lat: float
    lon: float
    clock: datetime
    heading: float = 0.0
    altitude: float = 1100.0

    def step(self, rng: random.Random, minutes: float = 1.0) -> dict[str, Any]:
        """One track point a minute later, 2 to 3.5 km/h on, the heading drifting."""
        self.heading += rng.gauss(0, 0.35)
        metres = (2.0 + 1.5 * rng.random()) * 1000 / 60 * minutes
        dlat = metres * math.cos(self.heading) / 111_320
        dlon = metres * math.sin(self.heading) / (111_320 * math.cos(math.radians(self.lat)))
        lat, lon = self.lat + dlat, self.lon + dlon
        if not self.box.contains(lat, lon):  # turn back at the sector's edge
            self.heading += math.pi
            lat, lon = self.lat - dlat, self.lon - dlon
        self.lat, self.lon = lat, lon
        self.altitude = min(2800.0, max(800.0, self.altitude + rng.gauss(0, 6)))
        self.clock += timedelta(minutes=minutes, seconds=int(rng.random() * 7) - 3)
        return {
            "t": self.clock.isoformat(timespec="seconds"),  # the walk's clock is Peru's
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "accuracy_m": round(3 + 22 * rng.random(), 1),
            "alt_m": round(self.altitude, 1),
        }

    def points(self, rng: random.Random, count: int) -> list[dict[str, Any]]:
        """``count`` points, one a minute."""
        return [self.step(rng) for _ in range(count)]


# ---------------------------------------------------------------- trails, for seeding

# Points of a sector's trail: about a week of walking, a hundred segments; a seeded
# patrol walks three to five hundred of them.
TRAIL_POINTS = 10_000


@dataclass(frozen=True)
class Trail:
    """A long walk through a sector, made once by ``Walker``'s own steps: the paths
    rangers keep to. Each point is kept as the JSON text of its accuracy, altitude and
    position, keys sorted as the server stores them, up to its time
    (``{"accuracy_m":4.2,…,"lon":-77.1,"t":"``), and with the seconds walked since the
    point before."""

    pieces: list[str]
    seconds: list[int]
    lats: list[float]
    lons: list[float]


@cache
def trail(box: Box) -> Trail:
    """The trail of ``box``'s sector, the same in every process."""
    rng = random.Random(f"trail:{box.south}:{box.north}:{box.west}:{box.east}")
    lat, lon = box.point(rng)
    walker = Walker(box, lat, lon, EPOCH, heading=rng.uniform(0, 2 * math.pi))
    pieces, seconds, lats, lons = [], [], [], []
    for _ in range(TRAIL_POINTS):
        before = walker.clock
        point = walker.step(rng)
        del point["t"]
        pieces.append(orjson.dumps(point, option=orjson.OPT_SORT_KEYS).decode()[:-1] + ',"t":"')
        seconds.append(int((walker.clock - before).total_seconds()))
        lats.append(point["lat"])
        lons.append(point["lon"])
    return Trail(pieces, seconds, lats, lons)


@cache
def _times_of_day() -> tuple[str, ...]:
    """``HH:MM:SSZ"},``, the end of a point, at every second of a day (6 MB, made once
    per process)."""
    return tuple(f'{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z"}},' for s in range(86_400))


@dataclass(frozen=True)
class Track:
    """Track points as the JSON text the server stores them in (what
    ``TrackSegmentFields.model_dump(mode="json")`` gives, times in UTC), made without a
    Python object per point; ``points()`` parses them."""

    json: str
    count: int

    def __len__(self) -> int:
        return self.count

    def points(self) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = orjson.loads(self.json)
        return points


class TrailWalker(Walker):
    """A ranger keeping to the sector's trail (``trail``), from a point of it drawn
    at the first segment, the way it goes: for the millions of points of a seeded
    history, whose segments come as ``Track`` text made from the trail's own text
    with this walk's times, a few operations a point. Where the trail ends, the
    walk turns back along it."""

    start: int | None = None
    forward: bool = True

    def points(self, rng: random.Random, count: int) -> list[dict[str, Any]]:
        return self.track(rng, count).points()

    def track(self, rng: random.Random, count: int) -> Track:
        path = trail(self.box)
        if count > len(path.pieces):
            raise ValueError(f"a segment of at most {len(path.pieces)} points")
        if self.start is None:
            self.start = rng.randrange(len(path.pieces) - count + 1)
        start = self.start
        if self.forward and start + count > len(path.pieces):
            self.forward = False
        elif not self.forward and start - count < 0:
            self.forward = True
        if self.forward:
            window = slice(start, start + count)
            self.start = start + count
        else:
            window = slice(start - 1, start - 1 - count if start > count else None, -1)
            self.start = start - count
        pieces, seconds = path.pieces[window], path.seconds[window]
        clock = self.clock.astimezone(UTC)
        midnight = clock.replace(hour=0, minute=0, second=0, microsecond=0)
        since = int((clock - midnight).total_seconds())
        moments = list(itertools.accumulate(seconds, initial=since))[1:]
        if moments[-1] >= 86_400:  # past midnight (UTC): each time with its own day
            stamps = [f'{midnight + timedelta(seconds=s):%Y-%m-%dT%H:%M:%S}Z"}},' for s in moments]
            parts = [part for pair in zip(pieces, stamps, strict=True) for part in pair]
        else:
            of_day = _times_of_day()
            day = f"{midnight:%Y-%m-%d}T"
            parts = [day] * (3 * count)
            parts[0::3] = pieces
            parts[2::3] = [of_day[s] for s in moments]
        body = "".join(parts)
        self.clock += timedelta(seconds=moments[-1] - since)
        last = window.stop - 1 if self.forward else self.start
        self.lat, self.lon = path.lats[last], path.lons[last]
        return Track(f"[{body[:-1]}]", count)


def track_segment_fields(
    rng: random.Random, patrol_id: uuid.UUID, walker: Walker, points: int = 100
) -> dict[str, Any]:
    """``points`` points, one a minute, of a walk: one segment of a patrol's track
    (as ``Track`` text on a ``TrailWalker``'s walk)."""
    made = (
        walker.track(rng, points) if isinstance(walker, TrailWalker) else walker.points(rng, points)
    )
    return {"patrol_id": str(patrol_id), "points": made}


def observation_fields(
    rng: random.Random,
    patrol_id: uuid.UUID,
    category: dict[str, Any],
    walker: Walker,
) -> dict[str, Any]:
    threat = category["key"].startswith("threat.")
    fields: dict[str, Any] = {
        "patrol_id": str(patrol_id),
        "category_key": category["key"],
        "observed_at": moment(walker.clock),
        "lat": round(walker.lat, 6),
        "lon": round(walker.lon, 6),
        "gps": {"accuracy_m": round(rng.uniform(3, 15), 1), "fix": "gps"},
        "attributes": category_attributes(rng, category),
        "action_taken": rng.choice(("observed", "warned", "reported")) if threat else "observed",
    }
    if rng.random() < 0.5:
        fields["notes"] = rng.choice(
            (
                "Se encontró evidencia reciente cerca de la quebrada.",
                "Huellas frescas en el barro del camino.",
                "Se informó al jefe de sector por radio.",
                "Los comuneros indican que ocurrió la semana pasada.",
                "Zona de difícil acceso; se tomaron fotografías.",
            )
        )
    return fields


def patrol_story(
    rng: random.Random,
    sector_id: uuid.UUID,
    box: Box,
    day: datetime,
    leader_id: uuid.UUID,
    categories: Sequence[dict[str, Any]],
    *,
    segments: tuple[int, int] = (3, 5),
    points_per_segment: int = 100,
    walker: type[Walker] = Walker,
) -> tuple[list[Record], dict[str, Any]]:
    """A day's ground patrol: the patrol (a draft), its track in segments of
    ``points_per_segment`` points walked by a ``walker``, and what was observed on the
    way. Also the fields the ranger sets when the patrol ends (``ended_at``,
    ``status: submitted``…), for the update that closes it."""
    patrol_id = new_id(rng)
    start = day.replace(hour=rng.choice((5, 6, 7)), minute=rng.randint(0, 59))
    lat, lon = box.point(rng)
    on_foot = walker(box, lat, lon, start.astimezone(PERU), heading=rng.uniform(0, 2 * math.pi))
    patrol = {
        "sector_id": str(sector_id),
        "patrol_type": "water" if rng.random() < 0.1 else "ground",
        "objective": rng.choice(
            (
                "Control de tala en la quebrada",
                "Recorrido del límite norte",
                "Verificación de denuncia de desbosque",
                "Monitoreo de fauna",
                "Patrullaje rutinario",
            )
        ),
        "leader_id": str(leader_id),
        "members": [
            {"user_id": str(leader_id), "role": "jefe de patrulla"},
            {"name": f"{rng.choice(GIVEN_MALE)} {rng.choice(SURNAMES)}", "role": "guardaparque"},
        ],
        "transport": rng.choice(("a pie", "a pie", "motocicleta", "bote")),
        "started_at": moment(start),
        "status": "draft",
    }
    made = [Record("patrol", patrol_id, patrol, sector_id, start)]
    for _ in range(rng.randint(*segments)):
        segment = track_segment_fields(rng, patrol_id, on_foot, points_per_segment)
        made.append(Record("track_segment", new_id(rng), segment, sector_id, on_foot.clock))
        for _ in range(rng.choices((0, 1, 2), weights=(3, 4, 2))[0]):
            category = rng.choice(categories)
            observation = observation_fields(rng, patrol_id, category, on_foot)
            made.append(Record("observation", new_id(rng), observation, sector_id, on_foot.clock))
    closing = {
        "ended_at": moment(on_foot.clock + timedelta(minutes=10)),
        "rest_minutes": rng.choice((30, 45, 60)),
        "status": "submitted",
    }
    return made, closing


VOLUNTEER = "voluntario"


def reviewed_patrol_story(
    rng: random.Random,
    sector_id: uuid.UUID,
    box: Box,
    day: datetime,
    team: Sequence[uuid.UUID],
    categories: Sequence[dict[str, Any]],
    *,
    points: int,
    status: str,
    walker: type[Walker] = TrailWalker,
) -> list[Record]:
    """A patrol as it reaches the office once the tablet has closed it: led by
    ``team[0]`` with the rest of ``team`` (users of the service) and now and then a
    community volunteer by name, ``points`` track points in one to three segments,
    what was observed on the way, and ``status`` (``draft``: not closed yet, no
    ``ended_at``; ``submitted`` or ``cancelled``: closed). For a history of patrols
    to review; a tablet's ``patrol_story`` closes its patrol by an update instead."""
    patrol_id = new_id(rng)
    start = day.replace(hour=rng.choice((5, 6, 7)), minute=rng.randint(0, 59))
    lat, lon = box.point(rng)
    on_foot = walker(box, lat, lon, start.astimezone(PERU), heading=rng.uniform(0, 2 * math.pi))
    members: list[dict[str, Any]] = [{"user_id": str(team[0]), "role": "jefe de patrulla"}]
    members += [{"user_id": str(member), "role": "guardaparque"} for member in team[1:]]
    if rng.random() < 0.3:
        members.append(
            {"name": f"{rng.choice(GIVEN_MALE)} {rng.choice(SURNAMES)}", "role": VOLUNTEER}
        )
    patrol: dict[str, Any] = {
        "sector_id": str(sector_id),
        "patrol_type": "water" if rng.random() < 0.1 else "ground",
        "objective": rng.choice(
            (
                "Control de tala en la quebrada",
                "Recorrido del límite norte",
                "Verificación de denuncia de desbosque",
                "Monitoreo de fauna",
                "Patrullaje rutinario",
            )
        ),
        "leader_id": str(team[0]),
        "members": members,
        "transport": rng.choice(("a pie", "a pie", "a pie", "motocicleta", "bote")),
        "started_at": moment(start),
        "status": status,
    }
    made = [Record("patrol", patrol_id, patrol, sector_id, start)]
    pieces = min(points, rng.randint(1, 3))
    cuts = sorted(rng.sample(range(1, points), pieces - 1)) if pieces > 1 else []
    for low, high in itertools.pairwise([0, *cuts, points] if points else [0]):
        segment = track_segment_fields(rng, patrol_id, on_foot, high - low)
        made.append(Record("track_segment", new_id(rng), segment, sector_id, on_foot.clock))
        for _ in range(rng.choices((0, 1, 2), weights=(3, 4, 2))[0]):
            category = rng.choice(categories)
            observation = observation_fields(rng, patrol_id, category, on_foot)
            made.append(Record("observation", new_id(rng), observation, sector_id, on_foot.clock))
    if status != "draft":
        patrol["ended_at"] = moment(on_foot.clock + timedelta(minutes=10))
        patrol["rest_minutes"] = rng.choice((0, 10, 15, 20))
        made[0].recorded_at = on_foot.clock + timedelta(minutes=15)
    return made


def day_after(rng: random.Random, day: datetime) -> datetime:
    """The next working day in the field (one to three days later)."""
    return day + timedelta(days=rng.randint(1, 3))


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
