"""The places files live, for every test of attachments: ``storage`` is each of a
local folder and an S3-compatible store (moto's server, a real S3 API over HTTP on
this machine; never a mocked client)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.attachments.storage import S3Storage, Storage, open_storage

BUCKET = "fieldsync-test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    previous = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        yield endpoint
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()


CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "fieldsync-test",
    "AWS_SECRET_ACCESS_KEY": "fieldsync-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage((tmp_path / "attachments").as_uri())
    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = uuid.uuid4().hex  # each test its own corner of the bucket
    made = open_storage(f"s3://{BUCKET}/{prefix}", s3_endpoint_url=endpoint)
    assert isinstance(made, S3Storage)
    with contextlib.suppress(made.client.exceptions.BucketAlreadyOwnedByYou):
        made.client.create_bucket(Bucket=BUCKET)
    return made
