"""A ranger's 10 MB photo reaches the office over a link that drops every 100 KiB,
through two server processes behind a balancer and a restart of one of them, and the
ranger lead sees it on the patrol: on SQLite and PostgreSQL, with the files in a
local folder shared by the processes and in an S3-compatible store (moto's server).

Everything is real: ``fieldsync serve`` processes, the reference client over HTTP,
a TCP relay that cuts each connection after 100 KiB from the tablet."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from sync.attachments.storage import S3Storage, open_storage
from sync.client.device import DeviceClient
from tests.attachments.conftest import BUCKET, CREDENTIALS
from tests.conftest import PASSWORD
from tests.flaky_link import FlakyLink
from tests.servers import Deployment, deployment_fixture

pytestmark = pytest.mark.slow

deployment = deployment_fixture
PHOTO_BYTES = 10 * 1024 * 1024
DROP_EVERY = 100 * 1024


def big_photo(path: Path) -> bytes:
    """A real JPEG (a small picture) carried to 10 MB by bytes after its end, which
    image readers skip, as a camera's maker notes and previews make photos large."""
    picture = io.BytesIO()
    Image.new("RGB", (640, 480), (34, 102, 51)).save(picture, "JPEG", quality=85)
    data = picture.getvalue() + os.urandom(PHOTO_BYTES - len(picture.getvalue()))
    path.write_bytes(data)
    return data


@pytest.fixture(params=["folder", "s3"])
def files_at(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where the server processes keep files: the settings that say so."""
    if request.param == "folder":
        return {"FIELDSYNC_ATTACHMENTS_URL": (tmp_path / "shared-files").as_uri()}
    endpoint = request.getfixturevalue("s3_endpoint")
    url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    made = open_storage(url, s3_endpoint_url=endpoint)
    assert isinstance(made, S3Storage)
    with contextlib.suppress(made.client.exceptions.BucketAlreadyOwnedByYou):
        made.client.create_bucket(Bucket=BUCKET)
    return {"FIELDSYNC_ATTACHMENTS_URL": url, "FIELDSYNC_S3_ENDPOINT_URL": endpoint, **CREDENTIALS}


class Office:
    """The admin and the ranger lead, at a server directly (the office's good link)."""

    def __init__(self, api: str) -> None:
        self.http = httpx.Client(base_url=api, timeout=30)

    def sign_in(self, username: str) -> dict[str, str]:
        answer = self.http.post("/auth/token", data={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def post(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(path, headers=headers, json=body)
        assert answer.status_code in (200, 201), answer.text
        made: dict[str, Any] = answer.json()
        return made


def received(database_url: str) -> int:
    """How many bytes of the upload in progress the server holds (0 when none)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text("SELECT coalesce(max(received), 0) FROM attachment_upload")
                ).scalar_one()
            )
    finally:
        engine.dispose()


@contextlib.contextmanager
def in_background(work: Any) -> Iterator[dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # the test's thread re-raises it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        thread.join(timeout=600)
        assert not thread.is_alive(), "the sync did not end"
        if "error" in outcome:
            raise outcome["error"]


def test_a_10_mb_photo_crosses_a_link_that_drops_every_100_kib_through_two_processes_and_a_restart(
    deployment: Deployment, files_at: dict[str, str], tmp_path: Path
) -> None:
    deployment.env.update(files_at)
    first, second = deployment.start(), deployment.start()
    office = Office(second.api)
    boss = office.sign_in("boss")
    sector = office.post("/sectors", boss, {"code": "AM-03", "name": "Alto Huasta"})["id"]
    office.post(
        "/observation-categories",
        boss,
        {"key": "threat.logging", "name_es": "Tala", "name_en": "Logging", "attributes": []},
    )
    made = {
        username: office.post(
            "/users",
            boss,
            {
                "username": username,
                "password": PASSWORD,
                "full_name": username.title(),
                "role": role,
                "sector_ids": [sector],
            },
        )
        for username, role in (("jorge", "ranger"), ("rosa", "ranger_lead"))
    }
    code = office.post("/devices", boss, {"label": "Tablet 7", "user_id": made["jorge"]["id"]})

    photo = tmp_path / "tocon.jpg"
    data = big_photo(photo)
    with FlakyLink([first.port, second.port], drop_every=DROP_EVERY) as link:

        def tablet() -> DeviceClient:
            return DeviceClient(
                f"{link.url}/api/v1",
                tmp_path / "tablet.db",
                max_retries=30,
                backoff=0.05,
                chunk_size=256 * 1024,
            )

        with contextlib.closing(tablet()) as offline:
            offline.enroll(code["enrollment_code"])
            patrol_id, observation_id = str(uuid.uuid4()), str(uuid.uuid4())
            offline.create(
                "patrol",
                patrol_id,
                {
                    "sector_id": sector,
                    "started_at": "2026-11-02T07:00:00-05:00",
                    "ended_at": "2026-11-02T15:00:00-05:00",
                    "status": "submitted",
                },
            )
            offline.create(
                "observation",
                observation_id,
                {
                    "patrol_id": patrol_id,
                    "category_key": "threat.logging",
                    "observed_at": "2026-11-02T09:10:00-05:00",
                    "lat": -5.71,
                    "lon": -77.45,
                    "attachments": [offline.attach(photo, caption="tocón de cedro")],
                },
            )

        def sync() -> Any:
            with contextlib.closing(tablet()) as online:
                return online.push()

        with in_background(sync) as outcome:
            # A third of the way, the first process is stopped and started again.
            deadline = time.monotonic() + 300
            while received(deployment.env["FIELDSYNC_DATABASE_URL"]) < PHOTO_BYTES // 3:
                assert time.monotonic() < deadline, "the upload did not get a third of the way"
                assert not outcome, outcome
                time.sleep(0.05)
            first.stop()
            link.upstreams[0] = deployment.start().port
        results = outcome["result"]

    assert [r.status for r in results] == ["applied", "applied"], results
    assert link.cuts >= PHOTO_BYTES // DROP_EVERY, link.cuts  # the link really dropped
    sha = hashlib.sha256(data).hexdigest()
    assert all(not r.missing_attachments for r in results), results

    lead = office.sign_in("rosa")
    detail = office.http.get(f"/patrols/{patrol_id}", headers=lead).json()
    [seen] = detail["observations"]
    [evidence] = seen["attachments"]
    assert (evidence["sha256"], evidence["held"], evidence["caption"]) == (
        sha,
        True,
        "tocón de cedro",
    )
    assert detail["patrol"]["attachments_missing"] == 0
    whole = office.http.get(evidence["url"].removeprefix("/api/v1"), headers=lead)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == sha
    thumbnail = office.http.get(evidence["thumbnail_url"].removeprefix("/api/v1"), headers=lead)
    assert thumbnail.status_code == 200, thumbnail.text
    assert max(Image.open(io.BytesIO(thumbnail.content)).size) <= 320
