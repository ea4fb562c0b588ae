"""The console run: the office's pages of the demo programme, timed as a browser asks them.

On a server of its own (``bench.run.served``: a fresh database, its admin, ``fieldsync
serve --workers W`` with production settings and ``FIELDSYNC_CONSOLE_COOKIE_SECURE=false``,
since the benchmark speaks plain HTTP), ``fieldsync demo --url`` builds the Alto Mayo
programme through the API (``--console-scale``; at 1: 1,600 households, about 7,100
people, 2,800 coffee participants, 360 patrols; the history ends on ``TODAY``) and
prints its staff's password, which is read from its output.

Then the ranger lead, the coordinator and the admin each sign in through the console's
own form, as a browser does (the sign-in page's ``csrf_token`` and its cookie, the form
posted, the session cookie kept), each over a connection of their own, and every page
of ``PAGES`` is asked, one request at a time:

1. its **first read**, timed apart (``first_ms``): the programme's and the threat
   reports are kept in each server process until the sync clock moves
   (``api.console.report_cache``), so their first read is the one that computes them,
   and a slow one must show, not be hidden by the cache;
2. ``WARM`` untimed reads;
3. ``--console-requests`` timed reads, each from sending the request to the whole body
   read.

A patrol's page is asked of the patrols the lead's list of every status shows, in
turn. Every answer must be a whole HTML page with status 200; anything else (a
redirect to the sign-in page, an error page) is an error of the run.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load import percentiles
from bench.memory import MemorySampler
from bench.report import TARGETS, say
from bench.server import Server, fieldsync_command

TODAY = "2026-11-24"  # where the demo's history ends: the same data every run
WARM = 3  # untimed reads of each page after its first: the worker's caches are built
HTTP_TIMEOUT = 300.0
FAILURE_EXAMPLES = 5
SESSION_COOKIE = "fieldsync_console"  # api.console.web's (the benchmark does not import api)
# Every surname of the demo's people is one of ``bench.generator.SURNAMES`` (38, two a
# person): each is borne by about one person in twenty (García: 357 of 7,170 at full
# scale). Asked without its accent, as an office types it; the search ignores accents
# and case.
SURNAME = "garcia"

LEAD, COORDINATOR, ADMIN = "ranger lead", "coordinator", "admin"
SERVER_ENV = {"FIELDSYNC_CONSOLE_COOKIE_SECURE": "false"}


@dataclass(frozen=True)
class Page:
    """A page of the console, who asks for it, and whether the server keeps what it
    reads (``report_cache``)."""

    label: str
    who: str
    path: str
    caches: bool = False


PATROL = "/console/patrols/{patrol_id}"
# What is timed, in the order of the table; the paths are those of the console's menu
# (templates/base.html) and of its pages (api/console/pages/*.py).
PAGES = {
    "patrol_queue": Page("patrols, the review queue", LEAD, "/console/patrols"),
    "patrols_all": Page("patrols, every status", LEAD, "/console/patrols?status=all"),
    "patrol": Page("a patrol's page", LEAD, PATROL),
    "threats": Page("threats", LEAD, "/console/threats", caches=True),
    "programme": Page("the programme's figures", COORDINATOR, "/console/programme", caches=True),
    "sessions": Page("training sessions", COORDINATOR, "/console/sessions"),
    "people": Page("people", COORDINATOR, "/console/people"),
    "people_search": Page(f"people, q={SURNAME}", COORDINATOR, f"/console/people?q={SURNAME}"),
    "duplicates": Page("people, likely duplicates", COORDINATOR, "/console/people/duplicates"),
    "agreements": Page("agreements", COORDINATOR, "/console/agreements"),
    "conflicts": Page("conflicts", COORDINATOR, "/console/conflicts"),
    "users": Page("users", ADMIN, "/console/admin/users"),
    "devices": Page("devices", ADMIN, "/console/devices"),
}


class ConsoleFailed(RuntimeError):
    """The demo could not be built, or someone could not sign in."""


# ---------------------------------------------------------------- the demo


@dataclass
class Demo:
    """Who signs in, and what the demo said it made."""

    passwords: dict[str, tuple[str, str]]  # who: (username, password)
    seconds: float
    made: list[str]  # the demo's own summary, counted by SQL


def build_demo(
    server: Server,
    env: dict[str, str],
    folder: Path,
    *,
    scale: float,
    seed: str,
    admin: tuple[str, str],
) -> Demo:
    """``fieldsync demo --url`` against the running server, its progress shown as it
    goes; the staff's passwords read from what it prints."""
    command = [
        *fieldsync_command(),
        "demo",
        *("--scale", f"{scale:g}", "--today", TODAY, "--seed", seed),
        *("--url", server.base_url, "--admin", admin[0], "--password-stdin", "--force"),
    ]
    started = time.perf_counter()
    output: list[str] = []
    with subprocess.Popen(  # noqa: S603 (our own command, no shell)
        command,
        cwd=folder,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(admin[1] + "\n")
        process.stdin.close()
        quiet = False
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            quiet = quiet or line.startswith("Sign in")  # the passwords stay out of the log
            if not quiet and line.strip():
                say(f"    demo| {line.rstrip()}")
    seconds = time.perf_counter() - started
    text = "\n".join(output)
    if process.returncode != 0:
        raise ConsoleFailed(f"fieldsync demo exited with {process.returncode}:\n{text[-3000:]}")
    return Demo(passwords=passwords(text, admin), seconds=round(seconds, 1), made=made(output))


def passwords(text: str, admin: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """The coordinator's and the ranger lead's username and password, as ``fieldsync
    demo`` prints them under "Sign in", and the admin's."""
    found = {ADMIN: admin}
    for who in (COORDINATOR, LEAD):
        match = re.search(rf"^\s+{who}\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE)
        if match is None:
            raise ConsoleFailed(f"fieldsync demo did not say the {who}'s password:\n{text[-2000:]}")
        found[who] = (match.group(1), match.group(2))
    return found


def made(lines: Sequence[str]) -> list[str]:
    """The demo's summary of what is held, counted by SQL (from "Built in" to the
    sign-in lines, without them)."""
    kept: list[str] = []
    for line in lines:
        if line.startswith("Built in") or kept:
            if not line.strip() or line.startswith("Sign in"):
                break
            kept.append(" ".join(line.split()))
    return kept


# ---------------------------------------------------------------- a browser


def sign_in(base_url: str, username: str, password: str) -> httpx.Client:
    """A browser signed in through the console's form: the page's anti-forgery token
    (in a hidden field and a cookie), the form posted, the session cookie kept."""
    browser = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT)
    try:
        form = browser.get("/console/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]*)"', form.text)
        if form.status_code != 200 or token is None:
            raise ConsoleFailed(f"the sign-in page: {form.status_code} {form.text[:300]}")
        answer = browser.post(
            "/console/sign-in",
            data={
                "csrf_token": html.unescape(token.group(1)),
                "next": "",
                "username": username,
                "password": password,
            },
        )
        if answer.status_code != 303 or SESSION_COOKIE not in browser.cookies:
            raise ConsoleFailed(
                f"{username} could not sign in: {answer.status_code} {answer.text[:300]}"
            )
    except BaseException:
        browser.close()
        raise
    return browser


def page_problem(answer: httpx.Response) -> str | None:
    """What is wrong with a page's answer, if anything: it must be 200, HTML, whole."""
    kind = answer.headers.get("content-type", "")
    if answer.status_code != 200:
        return f"{answer.status_code} {answer.headers.get('location', '')}{answer.text[:200]}"
    if not kind.startswith("text/html"):
        return f"200 but {kind or 'no content type'}"
    if "</html>" not in answer.text[-200:]:
        return f"200 but not a whole page ({len(answer.content)} bytes)"
    return None


@dataclass
class Timed:
    first: float | None = None
    seconds: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    asked: int = 0


def patrols_on(body: str) -> list[str]:
    """The patrols a list links to, in its order, once each."""
    return list(dict.fromkeys(re.findall(r'href="/console/patrols/([0-9a-f-]{36})"', body)))


def measure(
    browsers: dict[str, httpx.Client], *, requests: int, memory: MemorySampler
) -> dict[str, Any]:
    """Every page of ``PAGES``: its first read, ``WARM`` untimed, then ``requests``
    timed, one after the other on its viewer's connection."""
    report: dict[str, Any] = {}
    patrol_ids: list[str] = []
    for name, page in PAGES.items():
        browser = browsers[page.who]
        timed = Timed()
        if page.path == PATROL:
            paths = [PATROL.format(patrol_id=p) for p in patrol_ids]
            if not paths:
                timed.failures.append("the lead's list of every status links to no patrol")
        else:
            paths = [page.path]

        def ask(path: str, *, timed: Timed = timed, browser: httpx.Client = browser) -> float:
            sent = time.perf_counter()
            answer = browser.get(path)
            seconds = time.perf_counter() - sent
            timed.asked += 1
            problem = page_problem(answer)
            if problem is not None:
                timed.failures.append(f"{path}: {problem}")
                return -1.0
            timed.sizes.append(len(answer.content))
            if path == PAGES["patrols_all"].path and not patrol_ids:
                patrol_ids.extend(patrols_on(answer.text))
            return seconds

        if paths:
            with memory.during(f"console {name}"):
                first = ask(paths[0])
                timed.first = first if first >= 0 else None
                for index in range(WARM):
                    ask(paths[(index + 1) % len(paths)])
                for index in range(requests):
                    seconds = ask(paths[index % len(paths)])
                    if seconds >= 0:
                        timed.seconds.append(seconds)
        latency = percentiles(timed.seconds)
        report[name] = {
            "label": page.label,
            "who": page.who,
            "example": paths[0] if paths else page.path,
            "paths": len(paths),
            "caches": page.caches,
            "first_ms": None if timed.first is None else round(timed.first * 1000, 1),
            "count": len(timed.seconds),
            "latency_ms": latency,
            "target_ms": TARGETS["console_p95_ms"],
            "p95_within_target": latency["p95"] is not None
            and latency["p95"] <= TARGETS["console_p95_ms"],
            "mean_bytes": round(sum(timed.sizes) / len(timed.sizes)) if timed.sizes else None,
            "asked": timed.asked,
            "failed": len(timed.failures),
            "failures": timed.failures[:FAILURE_EXAMPLES],
        }
        latency_line = f"p50 {latency['p50']} ms, p95 {latency['p95']} ms"
        say(f"    {page.label}: first {report[name]['first_ms']} ms, {latency_line}")
    return report


def phase(
    server: Server,
    env: dict[str, str],
    folder: Path,
    memory: MemorySampler,
    *,
    scale: float,
    requests: int,
    seed: str,
    admin: tuple[str, str],
    figures: dict[str, Any],
) -> dict[str, Any]:
    """The demo built on the server, then its pages timed; what went wrong is counted
    in ``figures`` as errors of the run."""
    result: dict[str, Any] = {
        "scale": scale,
        "today": TODAY,
        "requests": requests,
        "warm": WARM,
        "target_ms": TARGETS["console_p95_ms"],
        "pages": {},
        # The machine's load average (1, 5, 15 min) before the demo and after the pages:
        # other work on a shared machine moves the figures.
        "load_average": {"start": _load()},
    }
    say(f"  console: the demo programme at scale {scale:g}, over the API")
    try:
        with memory.during("console demo"):
            demo = build_demo(server, env, folder, scale=scale, seed=seed, admin=admin)
        result["demo_seconds"], result["demo"] = demo.seconds, demo.made
        say(f"  console: built in {demo.seconds:.0f} s; signing in")
        browsers: dict[str, httpx.Client] = {}
        try:
            for who in (LEAD, COORDINATOR, ADMIN):
                browsers[who] = sign_in(server.base_url, *demo.passwords[who])
            result["pages"] = measure(browsers, requests=requests, memory=memory)
        finally:
            for browser in browsers.values():
                browser.close()
    except (ConsoleFailed, httpx.HTTPError) as error:
        _failed(figures, f"console: {error}")
        return result
    result["load_average"]["end"] = _load()
    load = result["load_average"]
    say(f"  console: load average {load['start']} before the demo, {load['end']} after the pages")
    pages = result["pages"]
    result["patrols_asked"] = pages["patrol"]["paths"]
    result["misses"] = [name for name, page in pages.items() if not page["p95_within_target"]]
    result["first_reads_over_target"] = [
        name
        for name, page in pages.items()
        if page["first_ms"] is not None and page["first_ms"] > TARGETS["console_p95_ms"]
    ]
    for page in pages.values():
        if page["failed"]:
            _failed(
                figures,
                f"console, {page['label']}: {page['failed']} of {page['asked']} answers were "
                f"not a 200 page: {page['failures'][:2]}",
            )
    return result


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _failed(figures: dict[str, Any], problem: str) -> None:
    figures["errors"] += 1
    figures["warnings"].append(problem)
    say(f"  !! {problem}")
