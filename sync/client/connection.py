"""The device's HTTP calls to the server: retries with backoff, token refresh, problems.

A network failure or a ``5xx`` resends the same request (with exponential backoff),
until the retries run out (``Unreachable``); a ``401`` for an invalid or expired
access token rotates the token pair once (stored before it is used), and any other
``401`` means the device must enroll again (``AuthFailed``). The server's errors are
problem documents: their ``code`` and ``detail`` are read here.

It talks HTTP through ``httpx`` only; it knows nothing of the server's framework
(pass it a ``TestClient`` in tests: it is an ``httpx.Client``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from sync.client.errors import AppTooOld, AuthFailed, SyncError, Unreachable
from sync.client.store import LocalStore


class Connection:
    """The device's link to the server at ``http``'s base URL; its tokens are in ``store``.

    ``owns_http``: whether closing the connection closes ``http`` (not when the caller
    gave it). ``max_retries`` and ``backoff`` may be changed between calls."""

    def __init__(
        self,
        http: httpx.Client,
        store: LocalStore,
        *,
        owns_http: bool,
        max_retries: int,
        backoff: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._http = http
        self._store = store
        self._owns_http = owns_http
        self.max_retries = max_retries
        self.backoff = backoff
        self._sleep = sleep

    @property
    def base_url(self) -> str:
        return str(self._http.base_url).removesuffix("/")

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def post_without_token(self, path: str, body: Any) -> httpx.Response:
        """A JSON ``POST`` made before the device has tokens (or to get new ones)."""
        return self.with_retries(lambda: self._http.post(path, json=body))

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A request with the device's token: retried on network failures and ``5xx``,
        the token pair rotated once on a ``401`` for an invalid or expired token."""
        refreshed = False
        while True:
            authorized = {
                **(headers or {}),
                "Authorization": f"Bearer {self._store.identity('access_token')}",
            }

            def send(headers: dict[str, str] = authorized) -> httpx.Response:
                return self._http.request(
                    method, path, params=params, content=content, headers=headers
                )

            response = self.with_retries(send)
            if (
                response.status_code == 401
                and not refreshed
                and problem_code(response) == "invalid_token"
            ):
                self.refresh()
                refreshed = True
                continue
            if response.status_code == 401:
                raise AuthFailed(problem_detail(response), status=401, code=problem_code(response))
            return response

    def refresh(self) -> None:
        """Rotate the token pair; the new pair is stored before it is ever used.

        A refresh whose answer was lost is retried with the same token: if the server
        never saw it, that succeeds; if it did, the device's sign-in is gone either way
        (the new pair is lost, and the replay revokes the family)."""
        refresh_token = self._store.identity("refresh_token")
        response = self.post_without_token("/auth/refresh", {"refresh_token": refresh_token})
        if response.status_code != 200:
            raise AuthFailed(
                f"the device cannot refresh its tokens: {problem_detail(response)}",
                status=response.status_code,
                code=problem_code(response),
            )
        pair = response.json()
        with self._store.transaction():
            self._store.set_meta("access_token", pair["access_token"])
            self._store.set_meta("refresh_token", pair["refresh_token"])

    def with_retries(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        attempt = 0
        while True:
            failure: str
            try:
                response = send()
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 500:
                    return response
                failure = f"{response.status_code}: {problem_detail(response)}"
            if attempt >= self.max_retries:
                raise Unreachable(
                    f"gave up after {attempt + 1} attempts; last: {failure}", code="unreachable"
                )
            self._sleep(self.backoff * 2**attempt)
            attempt += 1


# ---------------------------------------------------------------- problem documents


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def problem_code(response: httpx.Response) -> str | None:
    code = _problem(response).get("code")
    return code if isinstance(code, str) else None


def problem_detail(response: httpx.Response) -> str:
    detail = _problem(response).get("detail")
    return detail if isinstance(detail, str) else response.reason_phrase


def raise_for(response: httpx.Response) -> None:
    if response.status_code != 200:
        refusal = AppTooOld if response.status_code == 426 else SyncError
        raise refusal(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {problem_detail(response)}",
            status=response.status_code,
            code=problem_code(response),
        )


__all__ = ["Connection", "problem_code", "problem_detail", "raise_for"]
