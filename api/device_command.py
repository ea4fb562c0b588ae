"""``fieldsync device``: a tablet in the shell, to try sync by hand.

    fieldsync device enroll CODE [--url URL]   trade an enrollment code for the device
    fieldsync device attach FILE [--type T]    keep a photo/scan/recording; print its reference
    fieldsync device push [FILE.json | -]      record the file's edits, push the outbox
    fieldsync device pull                      print what changed since the last pull
    fieldsync device status                    the device, its outbox, the server

The device is the reference client, ``sync.client.device.DeviceClient``, with its state in one
SQLite file (``--state FILE``, by default ``~/.fieldsync/device.db``, mode 0600: it
holds the device's tokens): its identity, the server's URL, its outbox, the records it
has pulled and its cursor. What it does over HTTP, a tablet does.

The edits in FILE.json (a list, or one edit) are what a tablet's user makes:

    [{"op": "create", "entity": "patrol", "fields": {"sector_id": "…", "patrol_type": …}},
     {"op": "update", "entity": "patrol", "id": "…", "fields": {"status": "submitted"}},
     {"op": "delete", "entity": "observation", "id": "…"}]

``op`` is ``create`` unless said, and a create without an ``id`` gets a new one. The
device assigns what the protocol has it assign — ``seq``, ``change_id``,
``base_version`` (the version it last pulled, or made) and ``recorded_at`` — so a
file must not give them; an update or delete names a record the device holds (made
here, or pulled). Output is JSON, one line per result or pulled change, for ``jq``.

``attach`` prints the reference to put in a record's ``attachments`` field; the file
stays where it is and is uploaded (tus, resumable) by the push of an edit naming it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from sync.client import (
    AttachmentRefused,
    AuthFailed,
    DeviceClient,
    NotEnrolled,
    SyncError,
    Unreachable,
)

DEFAULT_STATE = Path("~/.fieldsync/device.db")
DEFAULT_URL = "http://127.0.0.1:8000"
OPS = ("create", "update", "delete")
EDIT_KEYS = frozenset({"op", "entity", "id", "fields"})
ASSIGNED = ("seq", "change_id", "base_version", "recorded_at")
STATUS_TIMEOUT_SECONDS = 5.0


PUSH_HELP = """\
Record the edits of FILE (- for standard input) in the device's outbox, as a tablet's
user makes them, then push the whole outbox; one JSON line per result.

  [{"op": "create", "entity": "patrol", "fields": {"sector_id": "...", ...}},
   {"op": "update", "entity": "patrol", "id": "...", "fields": {"status": "submitted"}},
   {"op": "delete", "entity": "observation", "id": "..."}]

op is create unless said; a create without an id gets a new one. The device assigns
seq, change_id, base_version and recorded_at: leave them out. An update or delete
names a record the device holds (made here, or pulled)."""


class BadEdits(ValueError):
    """The file of edits cannot be recorded as it is; nothing of it was."""


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="fieldsync device",
        description="A tablet in the shell: the reference sync client with a state file.",
        epilog="The format of a file of edits: fieldsync device push --help.",
    )
    actions = made.add_subparsers(required=True, metavar="ACTION")
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state",
        type=Path,
        default=DEFAULT_STATE,
        help=f"the device's state file (default {DEFAULT_STATE})",
    )
    state.add_argument(
        "--url",
        default=None,
        help=f"the server (default: the one enrolled with; for enroll, {DEFAULT_URL})",
    )

    enroll = actions.add_parser(
        "enroll", parents=[state], help="trade a one-time enrollment code for the device"
    )
    enroll.add_argument("code", help="the enrollment code, as shown (XXXX-XXXX-XXXX-XXXX)")
    enroll.set_defaults(run=_enroll)
    attach = actions.add_parser(
        "attach",
        parents=[state],
        help="keep FILE (a photo, scan or recording) to send with the edits naming it",
        description="Print the reference (JSON) to put in a record's attachments list; the "
        "file stays where it is, and the push of an edit that names it uploads it.",
    )
    attach.add_argument("file", type=Path, help="the file; it must stay where it is")
    attach.add_argument(
        "--type", default=None, help="its type (image/jpeg…); by default read from its bytes"
    )
    attach.add_argument("--caption", default=None, help="a caption for the record to show")
    attach.set_defaults(run=_attach)
    push = actions.add_parser(
        "push",
        parents=[state],
        help="record the edits of FILE (- for stdin), push the outbox",
        description=PUSH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    push.add_argument(
        "file", nargs="?", default=None, help="a JSON list of edits; without it, the outbox"
    )
    push.set_defaults(run=_push)
    actions.add_parser(
        "pull", parents=[state], help="pull what changed since the last pull; print it"
    ).set_defaults(run=_pull)
    actions.add_parser(
        "status", parents=[state], help="the device, its outbox, and whether the server answers"
    ).set_defaults(run=_status)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(argv or []))
    try:
        result: int = args.run(args)
        return result
    except NotEnrolled:
        _say(f"not enrolled ({args.state}): `fieldsync device enroll CODE --url URL` first")
    except Unreachable as error:
        _say(f"the server did not answer ({error}); nothing queued is lost: try again later")
    except AuthFailed as error:
        _say(
            f"the server refuses this device ({error.code}: {error}); enroll it again with "
            "a new code (its outbox is kept)"
        )
    except (SyncError, BadEdits) as error:
        _say(str(error))
    except ValueError as error:  # a state file that cannot serve (another user's edits…)
        _say(str(error))
    return 1


# ---------------------------------------------------------------- the actions


def _enroll(args: argparse.Namespace) -> int:
    with _device(args, url_default=DEFAULT_URL) as device:
        enrollment = device.enroll(args.code)
        queued = len(device.outbox())
    kept = f"; the {queued} edits of its outbox are kept" if queued else ""
    _say(
        f"enrolled device {enrollment.device_id} of user {enrollment.user_id} at "
        f"{device.server_url}{kept}; its state is in {args.state}. "
        "Next: `fieldsync device pull`"
    )
    return 0


def _attach(args: argparse.Namespace) -> int:
    with _device(args) as device:
        ref = device.attach(args.file, args.type, args.caption)
    _out(json.dumps(ref))
    _say(f"attached {args.file}: name it in a record's attachments, then push")
    return 0


def _push(args: argparse.Namespace) -> int:
    refused: AttachmentRefused | None = None
    with _device(args) as device:
        if args.file is not None:
            edits = _edits(sys.stdin if args.file == "-" else None, args.file)
            _record(device, edits)
        queued = {change.change_id: change for change in device.outbox()}
        try:
            results = device.push()
        except AttachmentRefused as error:  # the push went through: show it, then why
            refused, results = error, error.results
    for result in results:
        change = queued[str(result.change_id)]
        answer = result.model_dump(mode="json", exclude_none=True)
        _out(json.dumps({"entity": change.entity, "id": change.id, "op": change.op, **answer}))
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to push"
    _say(f"pushed {len(results)} changes: {shown}")
    if refused is not None:
        _say(str(refused))
        return 1
    return 0


def _pull(args: argparse.Namespace) -> int:
    with _device(args) as device:
        pulled = device.pull(on_change=lambda change: _out(change.model_dump_json()))
    _say(f"pulled {pulled} changes; the cursor is kept in {args.state}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _device(args, max_retries=0, timeout=STATUS_TIMEOUT_SECONDS) as device:
        lines = [("state", str(args.state))]
        if not device.enrolled:
            lines.append(("device", "not enrolled: fieldsync device enroll CODE --url URL"))
            _print_lines(lines)
            return 1
        lines += [
            ("device", str(device.device_id)),
            ("user", str(device.user_id or "(not recorded)")),
            ("last seq", str(device.next_seq - 1)),
            ("outbox", f"{len(device.outbox())} edits to push"),
            ("cursor", "held" if device.cursor else "none: the next pull takes the whole scope"),
        ]
        reachable = True
        try:
            me = device.me()
            answer = f"reachable, signed in as {me['username']} ({me['role']})"
        except Unreachable as error:
            reachable, answer = False, f"unreachable ({error})"
        except SyncError as error:
            reachable, answer = False, f"refuses this device ({error.code}: {error})"
        lines.append(("server", f"{device.server_url}: {answer}"))
    _print_lines(lines)
    return 0 if reachable else 1


# ---------------------------------------------------------------- the state file


@contextlib.contextmanager
def _device(
    args: argparse.Namespace,
    *,
    url_default: str | None = None,
    max_retries: int = 5,
    timeout: float = 30.0,
) -> Iterator[DeviceClient]:
    """The ``DeviceClient`` of ``--state``, readable by this user alone, on ``--url``,
    else the server it keeps, else ``url_default``."""
    args.state = Path(args.state).expanduser()
    _private_file(args.state)
    options: dict[str, Any] = {"max_retries": max_retries, "timeout": timeout}
    try:
        device = DeviceClient(_api(args.url) if args.url else None, args.state, **options)
    except ValueError:  # no --url, and the state file keeps none: a new device
        if url_default is None:
            raise NotEnrolled(args.state) from None
        device = DeviceClient(_api(url_default), args.state, **options)
    try:
        yield device
    finally:
        device.close()


def _private_file(path: Path) -> None:
    """The state file holds tokens: 0600, in a folder made 0700 if made here. SQLite
    gives its -wal and -shm files the database file's mode."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(descriptor)
    path.chmod(0o600)


def _api(url: str) -> str:
    base = url.rstrip("/")
    return base if base.endswith("/api/v1") else f"{base}/api/v1"


# ---------------------------------------------------------------- edits


def _edits(stream: TextIO | None, name: str) -> list[dict[str, Any]]:
    try:
        text = stream.read() if stream is not None else Path(name).read_text(encoding="utf-8")
    except OSError as error:
        raise BadEdits(f"{name}: {error.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadEdits(f"{name}: not JSON ({error})") from None
    edits = document if isinstance(document, list) else [document]
    checked = [_edit(edit, f"{name}: edit {n}") for n, edit in enumerate(edits, start=1)]
    return checked


def _edit(edit: Any, where: str) -> dict[str, Any]:
    if not isinstance(edit, dict):
        raise BadEdits(f"{where}: an edit is an object with op, entity, id and fields")
    given = [key for key in ASSIGNED if key in edit]
    if given:
        raise BadEdits(
            f"{where}: {', '.join(given)}: the device assigns {', '.join(ASSIGNED)}; leave them out"
        )
    unknown = sorted(set(edit) - EDIT_KEYS)
    if unknown:
        raise BadEdits(
            f"{where}: unknown keys {', '.join(unknown)} (an edit has op, entity, id, fields)"
        )
    op = edit.get("op", "create")
    if op not in OPS:
        raise BadEdits(f"{where}: op is one of {', '.join(OPS)}, not {op!r}")
    if not isinstance(edit.get("entity"), str):
        raise BadEdits(f"{where}: entity (patrol, observation, person…) is missing")
    fields = edit.get("fields", {})
    if not isinstance(fields, dict):
        raise BadEdits(f"{where}: fields is an object")
    record_id = edit.get("id")
    if record_id is None and op != "create":
        raise BadEdits(f"{where}: an {op} names the record's id")
    try:
        key = str(uuid.UUID(str(record_id))) if record_id is not None else str(uuid.uuid4())
    except ValueError:
        raise BadEdits(f"{where}: id {record_id!r} is not a UUID") from None
    return {"op": op, "entity": edit["entity"], "id": key, "fields": fields}


def _record(device: DeviceClient, edits: list[dict[str, Any]]) -> None:
    """Into the outbox, as the tablet's user makes them. What the device can tell is
    wrong (an update of a record it does not hold) is found before any is recorded."""
    held: dict[tuple[str, str], bool] = {}
    for n, edit in enumerate(edits, start=1):
        key = (edit["entity"], edit["id"])
        if key not in held:
            record = device.record(*key)
            held[key] = record is not None and not record.deleted
        if edit["op"] == "create" and held[key]:
            raise BadEdits(f"edit {n}: {key[0]} {key[1]} exists on this device: update it")
        if edit["op"] != "create" and not held[key]:
            raise BadEdits(
                f"edit {n}: no {key[0]} {key[1]} on this device: create it, or "
                "`fieldsync device pull` first"
            )
        held[key] = edit["op"] != "delete"
    for n, edit in enumerate(edits, start=1):
        try:
            if edit["op"] == "create":
                device.create(edit["entity"], edit["id"], edit["fields"])
            elif edit["op"] == "update":
                device.update(edit["entity"], edit["id"], edit["fields"])
            else:
                device.delete(edit["entity"], edit["id"])
        except ValueError as error:
            recorded = f"edits 1-{n - 1} are queued" if n > 1 else "none is queued"
            raise BadEdits(f"edit {n}: {error} ({recorded})") from None


# ---------------------------------------------------------------- output


# Written, not printed: what goes to stdout is the command's output (JSON for jq), and
# what goes to stderr is said to the person at the shell.
def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


def _say(message: str) -> None:
    sys.stderr.write(f"fieldsync device: {message}\n")


def _print_lines(lines: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        _out(f"{name.ljust(width)}  {value}")
