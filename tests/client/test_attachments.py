"""The reference client's files (sync/client/files.py) against the real app, on both
databases: attached by hash, uploaded with tus before the push, resumed after a lost
link or a restart, never sent twice.

Tablets talk to the app through ``Link``, a transport that records each request and
can cut the body of uploads every so many bytes (the server keeps what arrived, the
tablet hears nothing), go dead, or damage the bytes on the way.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import device_command
from schemas.sync import Status
from sync.client import AttachmentRefused, DeviceClient, Unreachable
from tests.conftest import Caller, World

BASE_URL = "http://testserver/api/v1"
KIB = 1024
TUS = {"Tus-Resumable": "1.0.0"}


# ---------------------------------------------------------------- helpers


class Link:
    """An ``httpx.MockTransport`` handler between a tablet and the app.

    ``cut_every``: after that many bytes of upload (``PATCH``) bodies, the link drops
    in the middle of a body: the bytes before the cut reach the server, which keeps
    them (as tus does with a chunk cut short), and the tablet gets ``WriteError``.
    ``dead_after``: after that many cuts, nothing gets through any more.
    ``damage``: each ``PATCH`` body reaches the server with its last byte changed.
    ``uploads_fail``: every ``PATCH`` is answered ``503`` without the app (a server that
    cannot store files just now), while other requests go through.
    """

    def __init__(
        self,
        app: httpx.Client,
        *,
        cut_every: int | None = None,
        dead_after: int | None = None,
        damage: bool = False,
        uploads_fail: bool = False,
    ) -> None:
        self.app = app
        self.uploads_fail = uploads_fail
        self.cut_every = cut_every
        self.dead_after = dead_after
        self.damage = damage
        self.carried = 0  # bytes of upload bodies since the last cut
        self.cuts = 0
        self.seen: list[tuple[str, str, int | None, int]] = []  # method, path, offset, bytes

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        offset = request.headers.get("upload-offset")
        self.seen.append(
            (request.method, request.url.path, None if offset is None else int(offset), len(body))
        )
        if self.dead_after is not None and self.cuts >= self.dead_after:
            raise httpx.ConnectError("no signal", request=request)
        if request.method == "PATCH":
            if self.uploads_fail:
                return httpx.Response(503, json={"code": "not_ready", "detail": "disk full"})
            if self.cut_every is not None and self.carried + len(body) > self.cut_every:
                arrived = body[: self.cut_every - self.carried]
                self.carried = 0
                self.cuts += 1
                if arrived:
                    self.app.send(_with_body(request, arrived))
                raise httpx.WriteError("the link dropped mid-upload", request=request)
            self.carried += len(body)
            if self.damage and body:
                request = _with_body(request, body[:-1] + bytes([body[-1] ^ 0xFF]))
        answer = self.app.send(request)
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-encoding", "content-length")
        }
        return httpx.Response(answer.status_code, headers=headers, content=answer.content)

    def requests(self, method: str, path_part: str = "/attachments/uploads") -> list[Any]:
        return [seen for seen in self.seen if seen[0] == method and path_part in seen[1]]

    def patches(self) -> list[tuple[int | None, int]]:
        """Each upload request's ``Upload-Offset`` and body size, in order."""
        return [(offset, size) for _, _, offset, size in self.requests("PATCH")]


def _with_body(request: httpx.Request, body: bytes) -> httpx.Request:
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    return httpx.Request(request.method, request.url, headers=headers, content=body)


def over(link: Link) -> httpx.Client:
    return httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(link))


def tablet(device: Caller, http: httpx.Client, path: Path, **options: Any) -> DeviceClient:
    """A client for ``device`` (enrolled, with its tokens) on the state file at ``path``."""
    return DeviceClient(
        http,
        path,
        device_id=device.tokens["device_id"],
        access_token=device.tokens["access_token"],
        refresh_token=device.tokens["refresh_token"],
        backoff=0,
        **options,
    )


def photo(folder: Path, size: int, name: str = "trap.jpg") -> Path:
    """A JPEG's signature and ``size`` bytes in all: what the server takes as one."""
    path = folder / name
    path.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(size - 4))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def held_by_server(device: Caller, sha256: str) -> bytes | None:
    """The file's bytes as the server gives them to ``device``; None if it holds none."""
    if device.request("HEAD", f"/attachments/{sha256}").status_code != 200:
        return None
    answer = device.get(f"/attachments/{sha256}")
    assert answer.status_code == 200, answer.text
    content: bytes = answer.content
    return content


def upload_location(state: Path) -> str | None:
    """The upload the state file keeps for its one attached file."""
    with sqlite3.connect(state) as db:
        row = db.execute("SELECT location FROM local_file").fetchone()
    return None if row is None else row[0]


@pytest.fixture
def sector(world: World) -> dict[str, Any]:
    return world.sector("AM-01")


@pytest.fixture
def ranger(world: World, sector: dict[str, Any]) -> Caller:
    category = world.admin.post(
        "/observation-categories",
        json={"key": "threat.trap", "name_es": "Trampa", "name_en": "Trap", "attributes": []},
    )
    assert category.status_code == 201, category.text
    return world.user("ranger", sector_ids=[sector["id"]])


def observation(sector: dict[str, Any], *refs: dict[str, Any]) -> dict[str, Any]:
    return {
        "sector_id": sector["id"],
        "category_key": "threat.trap",
        "observed_at": "2026-11-02T09:31:07-05:00",
        "lat": -5.9,
        "lon": -77.3,
        "attachments": list(refs),
    }


# ---------------------------------------------------------------- attaching


def test_attach_names_a_file_by_its_hash_and_reads_its_type_from_its_bytes(
    world: World, ranger: Caller, tmp_path: Path
) -> None:
    path = photo(tmp_path, 3000)
    pdf = tmp_path / "agreement.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(500))
    with tablet(world.device(ranger), world.client, tmp_path / "t.db") as client:
        ref = client.attach(path, caption="trampa de lazo")

        assert ref == {
            "sha256": sha256_of(path),
            "content_type": "image/jpeg",
            "size": 3000,
            "caption": "trampa de lazo",
        }
        assert client.attach(pdf, content_type="application/pdf")["content_type"] == (
            "application/pdf"
        )
        with pytest.raises(ValueError, match="not image/png"):
            client.attach(path, content_type="image/png")
        with pytest.raises(ValueError, match="not of a type"):
            client.attach(tmp_path / "t.db")
        assert client.outbox() == []  # attaching sends nothing and queues nothing


# ---------------------------------------------------------------- uploading


def test_a_photo_attached_to_an_observation_is_uploaded_before_the_push(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    path = photo(tmp_path, 700 * KIB)
    link = Link(world.client)
    with tablet(device, over(link), tmp_path / "t.db") as client:
        ref = client.attach(path)
        record_id = str(uuid.uuid4())
        client.create("observation", record_id, observation(sector, ref))

        results = client.sync()

        assert [(r.status, r.missing_attachments) for r in results] == [(Status.applied, None)]
        assert client.records("observation")[record_id]["attachments"] == [ref]
    order = [
        method for method, path_, *_ in link.seen if "/attachments/" in path_ or "push" in path_
    ]
    assert order == ["POST", "PATCH", "PATCH", "PATCH", "POST"]  # tus, then the push
    assert link.patches() == [(0, 256 * KIB), (256 * KIB, 256 * KIB), (512 * KIB, 188 * KIB)]
    assert held_by_server(device, ref["sha256"]) == path.read_bytes()
    assert device.get("/sync/missing-attachments").json()["total"] == 0


def test_a_file_the_server_holds_is_never_sent_again(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    path = photo(tmp_path, 300 * KIB)
    first = Link(world.client)
    with tablet(world.device(ranger), over(first), tmp_path / "a.db") as a:
        ref = a.attach(path)
        a.create("observation", uuid.uuid4(), observation(sector, ref))
        a.push()
        assert len(first.requests("PATCH")) == 2

        # The same photo on a second record of the same tablet: known held, not asked.
        a.create("observation", uuid.uuid4(), observation(sector, a.attach(path)))
        a.push()
        assert len(first.requests("POST")) == 1
        assert len(first.requests("PATCH")) == 2

    # Another tablet took the same bytes: the server says it holds them; none are sent.
    second = Link(world.client)
    other = world.user("ranger", sector_ids=[sector["id"]])
    with tablet(world.device(other), over(second), tmp_path / "b.db") as b:
        b.create("observation", uuid.uuid4(), observation(sector, b.attach(path)))
        results = b.push()
        b.push()

    assert [r.missing_attachments for r in results] == [None]
    assert len(second.requests("POST")) == 1
    assert second.requests("PATCH") == []


def test_a_link_that_drops_every_100_kib_still_gets_the_file_through(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    path = photo(tmp_path, 1536 * KIB + 123)
    link = Link(world.client, cut_every=100 * KIB)
    with tablet(device, over(link), tmp_path / "t.db") as client:
        ref = client.attach(path)
        client.create("observation", uuid.uuid4(), observation(sector, ref))

        results = client.sync()

    assert [(r.status, r.missing_attachments) for r in results] == [(Status.applied, None)]
    assert link.cuts >= 15
    offsets = [offset or 0 for offset, _ in link.patches()]
    # Each chunk starts where the server said the last one ended: none is resent blind.
    assert offsets == sorted(set(offsets))
    assert len(link.requests("HEAD")) == link.cuts
    assert len(link.requests("POST")) == 1
    held = held_by_server(device, ref["sha256"])
    assert held is not None
    assert hashlib.sha256(held).hexdigest() == ref["sha256"]


def test_a_link_that_goes_dead_mid_upload_gives_up_and_keeps_the_change(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    link = Link(world.client, cut_every=100 * KIB, dead_after=1)
    with tablet(world.device(ranger), over(link), tmp_path / "t.db", max_retries=2) as client:
        ref = client.attach(photo(tmp_path, 400 * KIB))
        client.create("observation", uuid.uuid4(), observation(sector, ref))

        with pytest.raises(Unreachable):
            client.push()

        assert len(client.outbox()) == 1
    # The push was tried too (the changes need not wait for their files), and met the
    # dead link: the first try and its two retries.
    assert len(link.requests("POST", "/sync/push")) == 3


def test_uploads_that_give_out_do_not_hold_the_changes_back(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    path = photo(tmp_path, 300 * KIB)
    state = tmp_path / "t.db"
    record_id = str(uuid.uuid4())
    with tablet(device, over(Link(world.client, uploads_fail=True)), state) as client:
        ref = client.attach(path)
        client.create("observation", record_id, observation(sector, ref))

        with pytest.raises(Unreachable):
            client.push()

        assert client.outbox() == []  # the record went ahead of its photo
    owed = device.get("/sync/missing-attachments").json()
    assert [(i["sha256"], i["record_id"]) for i in owed["items"]] == [(ref["sha256"], record_id)]

    link = Link(world.client)
    with tablet(device, over(link), state) as client:
        assert client.push() == []  # nothing queued, but the photo is still owed

    assert link.requests("POST", "/sync/push") == []
    assert held_by_server(device, ref["sha256"]) == path.read_bytes()
    assert device.get("/sync/missing-attachments").json()["total"] == 0


def test_a_client_closed_mid_upload_resumes_the_same_upload_when_opened_again(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    path = photo(tmp_path, 1024 * KIB)
    state = tmp_path / "t.db"
    dying = Link(world.client, cut_every=300 * KIB, dead_after=1)
    with tablet(device, over(dying), state, max_retries=1) as client:
        ref = client.attach(path)
        client.create("observation", uuid.uuid4(), observation(sector, ref))
        with pytest.raises(Unreachable):
            client.push()
    location = upload_location(state)
    assert location is not None
    asked = device.request("HEAD", location.removeprefix("/api/v1"), headers=TUS)
    assert asked.headers["Upload-Offset"] == str(300 * KIB)

    link = Link(world.client)
    with tablet(device, over(link), state) as client:
        results = client.push()

    assert [r.missing_attachments for r in results] == [None]
    assert link.requests("POST") == []  # no new upload: the same one, continued
    assert link.requests("HEAD")[0][1] == location
    assert link.patches()[0] == (300 * KIB, 256 * KIB)
    assert held_by_server(device, ref["sha256"]) == path.read_bytes()
    assert upload_location(state) is None


def test_an_upload_that_expired_starts_again(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    path = photo(tmp_path, 600 * KIB)
    state = tmp_path / "t.db"
    dying = Link(world.client, cut_every=300 * KIB, dead_after=1)
    with tablet(device, over(dying), state, max_retries=1) as client:
        ref = client.attach(path)
        client.create("observation", uuid.uuid4(), observation(sector, ref))
        with pytest.raises(Unreachable):
            client.push()
    old = upload_location(state)
    assert old is not None
    gone = device.request("DELETE", old.removeprefix("/api/v1"), headers=TUS)
    assert gone.status_code == 204

    link = Link(world.client)
    with tablet(device, over(link), state) as client:
        client.push()

    assert [seen[1] for seen in link.requests("HEAD")] == [old]
    assert len(link.requests("POST")) == 1
    assert link.patches()[0] == (0, 256 * KIB)
    assert held_by_server(device, ref["sha256"]) == path.read_bytes()


# ---------------------------------------------------------------- refused and owed


def test_a_file_changed_since_it_was_attached_is_refused_and_blocks_nothing(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    damaged = photo(tmp_path, 200 * KIB, "damaged.jpg")
    fine = photo(tmp_path, 200 * KIB, "fine.jpg")
    link = Link(world.client)
    with tablet(device, over(link), tmp_path / "t.db") as client:
        bad_ref, good_ref = client.attach(damaged), client.attach(fine)
        damaged.write_bytes(damaged.read_bytes()[:-10])  # the card lost its tail
        record_id = str(uuid.uuid4())
        client.create("observation", record_id, observation(sector, bad_ref, good_ref))

        with pytest.raises(AttachmentRefused) as refusal:
            client.sync()

        assert [f.sha256 for f in refusal.value.refused] == [bad_ref["sha256"]]
        assert "changed since it was attached" in str(refusal.value)
        assert [(r.status, r.missing_attachments) for r in refusal.value.results] == [
            (Status.applied, [bad_ref["sha256"]])
        ]
        assert client.outbox() == []
        assert record_id in client.records("observation")  # the pull ran too
        assert [f.sha256 for f in client.refused_attachments()] == [bad_ref["sha256"]]
        assert held_by_server(device, good_ref["sha256"]) == fine.read_bytes()

        client.update("observation", record_id, {"notes": "lazo de acero"})
        assert client.push()[0].status == Status.applied  # names no file: nothing to say
        client.update("observation", record_id, {"attachments": [bad_ref]})
        with pytest.raises(AttachmentRefused):  # named again: said again, not sent
            client.push()
    assert len(link.requests("POST", "/attachments/uploads")) == 1  # the fine photo's


def test_bytes_damaged_on_the_way_are_refused_by_the_server_and_not_sent_again(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    link = Link(world.client, damage=True)
    with tablet(device, over(link), tmp_path / "t.db") as client:
        ref = client.attach(photo(tmp_path, 100 * KIB))
        client.create("observation", uuid.uuid4(), observation(sector, ref))

        with pytest.raises(AttachmentRefused, match="460 checksum_mismatch"):
            client.push()
        client.push()

    assert len(link.requests("PATCH")) == 1
    assert held_by_server(device, ref["sha256"]) is None


def test_the_files_the_server_says_it_lacks_after_a_push_are_sent(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    path = photo(tmp_path, 300 * KIB)
    state = tmp_path / "t.db"
    link = Link(world.client)
    with tablet(device, over(link), state) as client:
        ref = client.attach(path)
        # The tablet believes the server holds it (a server restored from an older
        # backup, say): it is not sent before the push, but after the push says so.
        with sqlite3.connect(state) as db:
            db.execute("UPDATE local_file SET uploaded_at = '2026-11-01T00:00:00+00:00'")
        client.create("observation", uuid.uuid4(), observation(sector, ref))

        results = client.push()

    assert [r.missing_attachments for r in results] == [[ref["sha256"]]]
    methods = [m for m, p, *_ in link.seen if "/attachments/" in p or "push" in p]
    assert methods == ["POST", "POST", "PATCH", "PATCH"]  # the push, then tus
    assert held_by_server(device, ref["sha256"]) == path.read_bytes()
    assert device.get("/sync/missing-attachments").json()["total"] == 0


def test_upload_missing_sends_what_the_device_owes_and_holds(
    world: World, sector: dict[str, Any], ranger: Caller, tmp_path: Path
) -> None:
    device = world.device(ranger)
    recording = tmp_path / "voice.ogg"
    recording.write_bytes(b"OggS" + os.urandom(50 * KIB))
    elsewhere = "ab" * 32
    with tablet(device, world.client, tmp_path / "t.db") as client:
        # The record names a recording still being written, and a file of another tablet.
        name = sha256_of(recording)
        ref: dict[str, Any] = {
            "sha256": name,
            "content_type": "audio/ogg",
            "size": recording.stat().st_size,
            "caption": None,
        }
        other = {"sha256": elsewhere, "content_type": "image/png", "size": 10}
        client.create("observation", uuid.uuid4(), observation(sector, ref, other))
        results = client.push()
        assert results[0].missing_attachments == [name, elsewhere]
        assert client.attach(recording) == ref

        owed = client.upload_missing()

        assert owed.sent == [name]
        assert owed.not_here == [elsewhere]
        assert owed.refused == []
    assert held_by_server(device, name) == recording.read_bytes()
    left = device.get("/sync/missing-attachments").json()
    assert [item["sha256"] for item in left["items"]] == [elsewhere]


def test_attaching_a_large_file_reads_it_a_piece_at_a_time(
    world: World, ranger: Caller, tmp_path: Path
) -> None:
    path = photo(tmp_path, 12 * 1024 * KIB, "long.jpg")
    with tablet(world.device(ranger), world.client, tmp_path / "t.db") as client:
        tracemalloc.start()
        try:
            ref = client.attach(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert ref["sha256"] == sha256_of(path)
    assert peak < 3 * 1024 * KIB


def test_the_device_command_attaches_a_file_and_prints_its_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "device.db"
    DeviceClient("http://127.0.0.1:9/api/v1", state).close()  # a state file that keeps a URL
    path = photo(tmp_path, 5000)

    code = device_command.main(["attach", str(path), "--caption", "lazo", "--state", str(state)])

    assert code == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == {
        "sha256": sha256_of(path),
        "content_type": "image/jpeg",
        "size": 5000,
        "caption": "lazo",
    }
    assert (
        device_command.main(
            ["attach", str(path), "--type", "application/pdf", "--state", str(state)]
        )
        == 1
    )
    assert "not application/pdf" in capsys.readouterr().err
