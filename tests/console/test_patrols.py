"""The ranger lead's pages over plain HTTP, on both databases: the review queue and its
filters, a patrol's map, flags and photos, approving and returning, the threat report,
the exports with the session; roles and scope as strict as the API's."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import timedelta
from typing import Any

import pytest

from tests.api.test_record_attachments import ref, upload
from tests.api.test_thumbnails import photo
from tests.conftest import World
from tests.console.conftest import Browser, signed_in
from tests.patrol_support import PatrolTablet, at, walk

LAT, LON = -5.8, -77.3
MORNING = at("2026-03-02T08:00:00-05:00")
KM_PER_DEGREE = math.pi / 180 * 6371.0088


def east(km: float) -> float:
    return km / (KM_PER_DEGREE * math.cos(math.radians(LAT)))


def square(half: float) -> dict[str, Any]:
    """A sector boundary: a square ``half`` degrees each way around the patrols."""
    w, e, s, n = LON - half, LON + half, LAT - half, LAT + half
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


class Park:
    """Two sectors and their people; in AM-01 two submitted patrols (the first with a
    track that has a gap, a photo, and an observation far from the track) and a
    draft; in AM-02 one submitted patrol."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.sector = world.sector("AM-01", boundary=square(0.05))["id"]
        self.other = world.sector("AM-02")["id"]
        self.ranger = world.user("ranger", sector_ids=[self.sector])
        self.lead = world.user("ranger_lead", sector_ids=[self.sector])
        self.outsider = world.user("ranger_lead", sector_ids=[self.other])
        self.coordinator = world.user("coordinator")
        far_ranger = world.user("ranger", sector_ids=[self.other])
        timber = [{"key": "trees", "type": "number"}, {"key": "fresh", "type": "bool"}]
        for key, name_es, name_en, attributes in [
            ("threat.logging.timber", "Tala de madera", "Timber logging", timber),
            ("threat.fire", "Incendio", "Fire", []),
            ("wildlife.sighting", "Avistamiento", "Sighting", []),
        ]:
            made = world.admin.post(
                "/observation-categories",
                json={"key": key, "name_es": name_es, "name_en": name_en, "attributes": attributes},
            )
            assert made.status_code == 201, made.text
        device = world.device(self.ranger)
        self.photo = photo()
        upload(device, self.photo)
        self.photo_sha = str(ref(self.photo)["sha256"])
        self.tablet = tablet = PatrolTablet(device)
        morning = walk(MORNING, LAT, LON, minutes=60, step_m=50)
        later = walk(MORNING + timedelta(minutes=105), morning[-1][1], LON, minutes=30, step_m=50)
        self.first = tablet.patrol(
            sector_id=self.sector,
            started_at=MORNING,
            ended_at=MORNING + timedelta(hours=3),
            leader_id=str(self.ranger.user_id),
            objective="Control de tala, quebrada Shimpiyacu",
            segments=[morning, later],
            observations=[
                {
                    "category_key": "threat.logging.timber",
                    "observed_at": MORNING + timedelta(minutes=20),
                    "lat": LAT + 0.009,
                    "lon": LON,
                    "notes": "tocón fresco de cedro",
                    "attributes": {"trees": 3, "fresh": True},
                    "attachments": [ref(self.photo, "tocón de cedro")],
                },
                {
                    "category_key": "wildlife.sighting",
                    "observed_at": MORNING + timedelta(minutes=40),
                    "lat": LAT,
                    "lon": LON + east(2.5),
                },
            ],
        )
        self.second = tablet.patrol(
            sector_id=self.sector,
            started_at=MORNING - timedelta(days=3),
            ended_at=MORNING - timedelta(days=3) + timedelta(hours=2),
            leader_id=str(self.ranger.user_id),
            segments=[walk(MORNING - timedelta(days=3), LAT, LON, minutes=60, step_m=40)],
            observations=[
                {"category_key": "threat.fire", "observed_at": MORNING - timedelta(days=3),
                 "lat": LAT, "lon": LON},
            ],
        )  # fmt: skip
        self.draft = tablet.patrol(
            sector_id=self.sector, started_at=MORNING + timedelta(days=1), ended_at=None,
            status="draft",
        )  # fmt: skip
        self.far = PatrolTablet(world.device(far_ranger)).patrol(
            sector_id=self.other,
            started_at=MORNING,
            ended_at=MORNING + timedelta(hours=1),
            segments=[walk(MORNING, LAT, LON, minutes=30, step_m=50)],
        )

    def status_of(self, patrol_id: str) -> str:
        answer = self.world.admin.get(f"/patrols/{patrol_id}")
        assert answer.status_code == 200, answer.text
        status: str = answer.json()["patrol"]["status"]
        return status


@pytest.fixture
def park(world: World) -> Park:
    return Park(world)


def patrol_links(page: Any) -> list[str]:
    """The patrols a list page links to, in its order, each once."""
    assert page.status_code == 200, page.text
    found = re.findall(r'href="/console/patrols/([0-9a-f-]{36})"', page.text)
    return list(dict.fromkeys(found))


# ---------------------------------------------------------------- the queue


def test_a_lead_sees_the_queue_longest_waiting_first_and_filters_it(park: Park) -> None:
    lead = signed_in(park.world, park.lead)

    page = lead.get("/console/patrols")

    assert "Cola de revisión" in page.text
    # Sent first, waiting longest: first, though it started after the second.
    assert patrol_links(page) == [park.first, park.second]
    assert "Control de tala, quebrada Shimpiyacu" in page.text
    assert patrol_links(lead.get("/console/patrols?category=threat.fire")) == [park.second]
    assert patrol_links(lead.get("/console/patrols?category=threat")) == [park.first, park.second]
    assert patrol_links(lead.get("/console/patrols?from=2026-03-01&to=2026-03-02")) == [park.first]
    assert patrol_links(lead.get(f"/console/patrols?sector_id={park.sector}&category=")) == [
        park.first,
        park.second,
    ]
    assert patrol_links(lead.get(f"/console/patrols?sector_id={park.other}")) == []
    everything = lead.get("/console/patrols?status=all")
    assert set(patrol_links(everything)) == {park.first, park.second, park.draft}
    assert patrol_links(lead.get("/console/patrols?status=draft")) == [park.draft]
    by_ranger = lead.get(f"/console/patrols?ranger_id={park.ranger.user_id}")
    assert patrol_links(by_ranger) == [park.first, park.second]
    assert park.ranger.username.title() in by_ranger.text  # the ranger chosen, named


def test_the_ranger_filter_offers_the_rangers_of_the_lead_s_sectors_only(park: Park) -> None:
    page = signed_in(park.world, park.lead).get("/console/patrols")

    offered = re.findall(r'<option value="([0-9a-f-]{36})"[^>]*>([^<]+)</option>', page.text)
    people = {name for value, name in offered if value in {str(park.ranger.user_id)}}
    assert people == {park.ranger.username.title()}
    assert str(park.lead.user_id) in {value for value, _ in offered}  # leads patrol too
    assert park.outsider.username.title() not in page.text


def test_filters_that_cannot_be_read_are_said_so_on_the_page(park: Park) -> None:
    lead = signed_in(park.world, park.lead)

    backwards = lead.get("/console/patrols?from=2026-03-05&to=2026-03-01")
    impossible = lead.get("/console/patrols?from=2026-02-30")

    for page in (backwards, impossible):
        assert page.status_code == 422
        assert "Estos filtros no se pueden leer" in page.text
        assert 'name="status"' in page.text  # the form is there to fix them


def test_the_coordinator_sees_every_sector(park: Park) -> None:
    coordinator = signed_in(park.world, park.coordinator)

    assert set(patrol_links(coordinator.get("/console/patrols"))) == {
        park.first,
        park.second,
        park.far,
    }


# ---------------------------------------------------------------- scope and roles


def test_another_sectors_patrol_is_the_404_page(park: Park) -> None:
    outsider = signed_in(park.world, park.outsider)

    for path in (
        f"/console/patrols/{park.first}",
        f"/console/patrols/{park.first}/track.gpx",
        f"/console/attachments/{park.photo_sha}?variant=thumbnail",
        f"/console/attachments/{park.photo_sha}",
    ):
        page = outsider.get(path)
        assert page.status_code == 404, path
        assert "No se encontró, o no le corresponde verlo." in page.text
    assert patrol_links(outsider.get("/console/patrols")) == [park.far]
    # Nor is a ranger of another sector named by their id.
    elsewhere = outsider.get(f"/console/patrols?ranger_id={park.ranger.user_id}")
    assert patrol_links(elsewhere) == []
    assert park.ranger.username.title() not in elsewhere.text


def test_a_ranger_gets_the_403_page(park: Park) -> None:
    ranger = signed_in(park.world, park.ranger)

    for path in (
        "/console/patrols",
        f"/console/patrols/{park.first}",
        "/console/patrols/export.csv",
        "/console/threats",
    ):
        page = ranger.get(path)
        assert page.status_code == 403, path
        assert "Esta página es para otro rol." in page.text


def test_a_coordinator_reads_a_patrol_but_may_not_review_it(park: Park) -> None:
    coordinator = signed_in(park.world, park.coordinator)
    page = coordinator.get(f"/console/patrols/{park.first}")
    assert page.status_code == 200
    assert "/review" not in page.text  # no review form

    refused = coordinator.post(
        f"/console/patrols/{park.first}/review",
        {"decision": "approve"},
        token_from=f"/console/patrols/{park.first}",
    )

    assert refused.status_code == 403
    assert "Esta página es para otro rol." in refused.text
    assert park.status_of(park.first) == "submitted"


def test_signed_out_the_pages_send_to_the_sign_in(park: Park, browser: Browser) -> None:
    for path in ("/console/patrols", f"/console/attachments/{park.photo_sha}"):
        answer = browser.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/sign-in?next=")


# ---------------------------------------------------------------- the review


def test_a_lead_approves_one_patrol_and_returns_another_with_a_comment(park: Park) -> None:
    lead = signed_in(park.world, park.lead)
    first, second = f"/console/patrols/{park.first}", f"/console/patrols/{park.second}"

    approved = lead.post(f"{first}/review", {"decision": "approve"}, token_from=first)

    assert approved.status_code == 303
    assert approved.headers["location"] == f"{first}?notice=approved"
    assert "Patrullaje aprobado" in lead.get(approved.headers["location"]).text
    assert park.status_of(park.first) == "approved"

    silent = lead.post(
        f"{second}/review", {"decision": "return", "comment": " "}, token_from=second
    )
    assert silent.status_code == 422
    assert "Para devolver un patrullaje hace falta un comentario" in silent.text
    assert park.status_of(park.second) == "submitted"

    comment = "Falta la hora de regreso y el track de la tarde"
    returned = lead.post(
        f"{second}/review", {"decision": "return", "comment": comment}, token_from=second
    )
    assert returned.status_code == 303
    assert park.status_of(park.second) == "returned"
    page = lead.get(second)
    assert comment in page.text
    assert "Devuelto" in page.text  # in the review history
    assert 'name="decision"' not in page.text  # nothing left to review

    again = lead.post(f"{first}/review", {"decision": "return", "comment": "no"}, token_from=first)
    assert again.status_code == 409
    assert "Este patrullaje ya está aprobado." in again.text
    assert "Ningún patrullaje espera revisión." in lead.get("/console/patrols").text


def test_the_office_moves_a_patrol_filed_under_the_wrong_sector(park: Park) -> None:
    page = f"/console/patrols/{park.draft}"
    lead = signed_in(park.world, park.lead)
    assert "/move" not in lead.get(page).text  # one sector: nowhere to move it
    refused = lead.post(f"{page}/move", {"sector_id": park.other}, token_from=page)
    assert refused.status_code == 422
    assert "solo puede moverlo entre sectores a su cargo" in refused.text
    coordinator = signed_in(park.world, park.coordinator)
    assert "¿Registrado en el sector equivocado?" in coordinator.get(page).text

    moved = coordinator.post(f"{page}/move", {"sector_id": park.other}, token_from=page)

    assert moved.status_code == 303
    assert moved.headers["location"] == f"{page}?notice=moved"
    assert "Patrullaje movido" in coordinator.get(moved.headers["location"]).text
    answer = park.world.admin.get(f"/patrols/{park.draft}")
    assert answer.json()["patrol"]["sector_id"] == park.other
    assert lead.get(page).status_code == 404
    forged = coordinator.http.post(f"{page}/move", data={"sector_id": park.sector})
    assert forged.status_code == 403


def test_a_review_without_its_form_token_is_refused_and_changes_nothing(park: Park) -> None:
    lead = signed_in(park.world, park.lead)
    path = f"/console/patrols/{park.first}/review"

    for token in ({}, {"csrf_token": "guessed"}):
        forged = lead.http.post(path, data={"decision": "approve", **token})
        assert forged.status_code == 403
        assert "Este formulario está vencido" in forged.text

    assert park.status_of(park.first) == "submitted"


# ---------------------------------------------------------------- the patrol page


def test_the_patrol_page_draws_the_map_and_explains_the_flags(park: Park) -> None:
    lead = signed_in(park.world, park.lead)

    page = lead.get(f"/console/patrols/{park.first}")

    assert page.status_code == 200
    svg = re.search(r'<svg class="map".*?</svg>', page.text, re.DOTALL)
    assert svg, "no map"
    assert svg.group(0).count('class="boundary"') == 1
    assert svg.group(0).count('<polyline class="track"') == 2  # two stretches, the gap apart
    assert svg.group(0).count('class="observation"') == 2
    assert re.findall(r'<text class="label"[^>]*>(\d+)</text>', svg.group(0)) == ["1", "2"]
    assert 'id="observation-1"' in page.text
    assert 'id="observation-2"' in page.text
    # The flags, each with what it means.
    assert "Hueco en el track" in page.text
    assert "Observación lejos del track" in page.text
    assert "la observación 2 está a 2,50 km" in page.text
    assert "Tala de madera" in page.text
    assert "<dt>fresh</dt><dd>Sí</dd><dt>trees</dt><dd>3</dd>" in page.text
    # Effort, with the gap not walked.
    assert "Kilómetros recorridos" in page.text
    # The review form carries its token.
    assert 'name="csrf_token"' in page.text
    assert f'action="/console/patrols/{park.first}/review"' in page.text


def test_the_patrol_page_shows_photos_served_with_the_session(park: Park) -> None:
    lead = signed_in(park.world, park.lead)
    page = lead.get(f"/console/patrols/{park.first}")
    thumbnail = f"/console/attachments/{park.photo_sha}?variant=thumbnail"
    assert f'src="{thumbnail}"' in page.text
    assert "tocón de cedro" in page.text

    small = lead.get(thumbnail)
    whole = lead.get(f"/console/attachments/{park.photo_sha}")

    assert small.status_code == 200
    assert small.headers["content-type"] == "image/jpeg"
    assert small.headers["cache-control"] == "no-store"
    assert 0 < len(small.content) < len(park.photo)
    assert whole.status_code == 200
    assert whole.content == park.photo
    coordinator = signed_in(park.world, park.coordinator)
    assert coordinator.get(thumbnail).status_code == 200


# ---------------------------------------------------------------- threats


def table(page: Any) -> list[list[str]]:
    """The cells of the page's table, row by row, header left out."""
    assert page.status_code == 200, page.text
    found = re.search(r"<tbody>(.*?)</tfoot>", page.text, re.DOTALL)
    assert found, "no table"
    rows = re.findall(r"<tr>(.*?)</tr>", found.group(1), re.DOTALL)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)
        ]
        for row in rows
    ]


def test_the_threat_report_has_its_chart_and_its_csv(park: Park) -> None:
    lead = signed_in(park.world, park.lead)

    by_month = lead.get("/console/threats")
    by_category = lead.get("/console/threats?group_by=category&from=2026-02-01&to=2026-03-31")

    assert by_month.status_code == 200
    assert "Amenazas observadas" in by_month.text
    chart = re.search(r'<svg class="chart".*?</svg>', by_month.text, re.DOTALL)
    assert chart, "no chart"
    assert chart.group(0).count('<rect class="bar"') == 2  # February and March
    assert "feb 2026" in chart.group(0)
    assert "mar 2026" in chart.group(0)
    assert by_category.status_code == 200
    # 4.5 km walked on the first patrol (the gap not counted), 2.4 km on the second.
    assert table(by_category) == [
        ["Incendio", "1", "6,9", "1,45"],
        ["Tala de madera", "1", "6,9", "1,45"],
        ["Total", "2", "6,9", "2,90"],
    ]
    everything = table(lead.get("/console/threats?group_by=category&category="))
    assert [row[0] for row in everything] == ["Incendio", "Tala de madera", "Avistamiento", "Total"]

    download = lead.get("/console/threats/export.csv?group_by=category")

    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert {row["group"] for row in rows} == {"threat.fire", "threat.logging.timber", "total"}
    assert next(r for r in rows if r["group"] == "total")["observations"] == "2"


def test_the_threat_report_counts_what_a_tablet_sent_after_it_was_read(park: Park) -> None:
    lead = signed_in(park.world, park.lead)
    assert table(lead.get("/console/threats?group_by=category"))[-1][:2] == ["Total", "2"]
    fire = {"category_key": "threat.fire", "observed_at": MORNING, "lat": LAT, "lon": LON}

    park.tablet.patrol(
        sector_id=park.sector,
        started_at=MORNING,
        ended_at=MORNING + timedelta(hours=1),
        observations=[fire],
    )

    assert table(lead.get("/console/threats?group_by=category"))[-1][:2] == ["Total", "3"]


def test_the_threat_report_of_another_sector_is_empty_for_a_lead(park: Park) -> None:
    outsider = signed_in(park.world, park.outsider)

    page = outsider.get(f"/console/threats?sector_id={park.sector}")

    assert page.status_code == 200
    assert '<svg class="chart"' not in page.text


# ---------------------------------------------------------------- exports


def test_the_exports_download_with_the_session(park: Park) -> None:
    lead = signed_in(park.world, park.lead)
    queue = lead.get("/console/patrols?category=threat")
    assert 'href="/console/patrols/export.csv?category=threat&amp;status=submitted"' in queue.text

    spreadsheet = lead.get("/console/patrols/export.csv?status=all")
    gis = lead.get("/console/patrols/export.geojson?category=threat.fire")
    gpx = lead.get(f"/console/patrols/{park.first}/track.gpx")

    assert spreadsheet.status_code == 200
    assert spreadsheet.headers["content-type"].startswith("text/csv")
    assert spreadsheet.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(spreadsheet.content.decode("utf-8-sig"))))
    assert {row["patrol_id"] for row in rows} == {park.first, park.second, park.draft}
    assert gis.status_code == 200
    features = json.loads(gis.content)["features"]
    assert {feature["properties"]["patrol_id"] for feature in features} == {park.second}
    assert gpx.status_code == 200
    assert gpx.text.count("<trkseg>") == 2
    assert lead.get("/console/patrols/export.csv?from=yesterday").status_code == 422


# ---------------------------------------------------------------- languages


def test_spanish_by_default_and_english_when_asked(park: Park) -> None:
    lead = signed_in(park.world, park.lead)

    spanish = lead.get(f"/console/patrols/{park.first}")
    english = lead.get(f"/console/patrols/{park.first}?lang=en")

    assert 'lang="es"' in spanish.text
    assert "Alertas de calidad" in spanish.text
    assert "Aprobar" in spanish.text
    assert 'lang="en"' in english.text
    assert "Quality flags" in english.text
    assert "Gap in the track" in english.text
    assert "Timber logging" in english.text
    assert "Approve" in english.text
    assert "Review queue" in lead.get("/console/patrols").text  # the choice is kept
