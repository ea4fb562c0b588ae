"""Fixtures for the console: a browser-like client (cookies kept, redirects not
followed) signed in as a person of each role, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.asgi import TestClient
from tests.conftest import PASSWORD, Caller, World

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """One person's browser at the console: its own cookies."""

    def __init__(self, client: TestClient) -> None:
        self.http = TestClient(client.app, base_url="http://testserver", follow_redirects=False)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.http.get(path, **kwargs)

    def token(self, path: str) -> str:
        """The anti-forgery token of the form on the page at ``path``."""
        page = self.get(path)
        assert page.status_code == 200, page.text
        found = CSRF.search(page.text)
        assert found, "the page has no form token"
        return found.group(1)

    def post(self, path: str, data: dict[str, Any], *, token_from: str | None = None) -> Any:
        """Post a form as the page ``token_from`` (default: ``path``) would."""
        form = {"csrf_token": self.token(token_from or path), **data}
        return self.http.post(path, data=form)

    def sign_in(self, username: str, password: str = PASSWORD) -> Any:
        answer = self.post("/console/sign-in", {"username": username, "password": password})
        return answer


@pytest.fixture
def browser(client: TestClient) -> Iterator[Browser]:
    made = Browser(client)
    with made.http:
        yield made


def signed_in(world: World, caller: Caller) -> Browser:
    made = Browser(world.client)
    answer = made.sign_in(caller.username)
    assert answer.status_code == 303, answer.text
    return made
