"""Check a fieldsync verifier's bundle with nothing but Python's standard library.

    python3 verify_bundle.py [BUNDLE_FOLDER] [--key OFFICE_PUBLIC_KEY]

A bundle is what ``fieldsync audit export`` wrote: every row of the office's audit
chain up to a signed head (``rows.jsonl``: each row's content exactly as it was
hashed, personal data as keyed pseudonyms), the chain's blocks (``blocks.jsonl``),
the office's signed anchors (``anchors.jsonl``) and the figures the office reports
(``bundle.json``). This script trusts none of them:

1. every row is hashed again from its content, and every block from its rows, its
   number and the block before it, from the first block to the last;
2. every anchor's Ed25519 signature is checked (``ed25519.py``, beside this file),
   and the last block must be one the office signed; with ``--key``, only anchors
   signed by that key (given to you by the office, not by the bundle) count;
3. the programme's figures are counted again from the records' versions, and set
   beside the figures the office reports.

It prints what it found, and exits 0 only if every hash checks, the bundle ends at
a signed block and every figure is the office's; 1 if not; 2 if the bundle cannot
be read at all. It is copied into each bundle from
fieldsync's ``sync/audit`` and runs on Python 3.8 or later.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import math
import re
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple

FORMS = ("fieldsync-audit-1", "fieldsync-audit-2")
GENESIS = "0" * 64
ANCHOR_FORM = "fieldsync-audit-1"  # names the statement an anchor's signature covers
GAP = timedelta(minutes=30)  # a longer silence between two fixes is not walked

Record = Dict[str, Any]


def _ed25519() -> Any:
    """``ed25519.py``, the Ed25519 check beside this file (read, never cached in the
    bundle's folder: the script leaves the bundle as it found it)."""
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location("ed25519", Path(__file__).with_name("ed25519.py"))
    if spec is None or spec.loader is None:
        raise SystemExit("ed25519.py must be beside this script")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(path: Path) -> Iterator[Dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


class Bundle:
    """What the bundle holds, and what checking it found."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.manifest: Dict[str, Any] = json.loads((folder / "bundle.json").read_text("utf-8"))
        self.problems: List[str] = []
        self.notes: List[str] = []
        self.blocks = 0
        self.rows = 0
        self.withheld: Dict[str, int] = {}
        # The latest version of each record: (entity, id) -> (version, op, fields)
        self.latest: Dict[Tuple[str, str], Tuple[int, str, Record]] = {}
        self.merges: List[Tuple[str, str]] = []  # (merged, kept), in chain order
        self.head: Tuple[int, str] = (0, GENESIS)

    # ------------------------------------------------------------ the chain

    def check_chain(self) -> None:
        rows_of: Dict[int, List[str]] = {}
        for row in _lines(self.folder / "rows.jsonl"):
            rows_of.setdefault(int(row["block"]), []).append(self._row(row))
        expected, prev = 1, GENESIS
        for block in _lines(self.folder / "blocks.jsonl"):
            number, where = int(block["number"]), "block {}".format(block["number"])
            if number != expected:
                self.problems.append(f"{where}: block {expected} is missing before it")
            if block["prev_hash"] != prev:
                self.problems.append(f"{where}: it does not follow the block before it")
            if block["form"] not in FORMS:
                self.problems.append(f"{where}: it names an unknown form of hashing")
            hashes = rows_of.pop(number, [])
            if len(hashes) != int(block["entries"]):
                self.problems.append(
                    f"{where}: it sealed {block['entries']} rows and the bundle has {len(hashes)}"
                )
            digest = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
            text = "{}\n{}\n{}\n{}\n{}\n{}".format(
                block["form"], number, block["prev_hash"], block["tx"], len(hashes), digest
            )
            if hashlib.sha256(text.encode()).hexdigest() != block["hash"]:
                self.problems.append(f"{where}: its rows do not hash to what it sealed")
            self.blocks += 1
            expected, prev = number + 1, block["hash"]
        self.head = (expected - 1, prev)
        for number in sorted(rows_of):
            self.problems.append(f"rows.jsonl: {len(rows_of[number])} rows name block {number}")

    def _row(self, row: Dict[str, Any]) -> str:
        """The row's hash (recomputed from its content where the bundle shows it); its
        content taken in for the figures."""
        self.rows += 1
        table = row["table"]
        if "content" not in row:
            reason = row.get("withheld", "withheld")
            self.withheld[reason] = self.withheld.get(reason, 0) + 1
            if "unchecked" in row:
                self._take(table, row["unchecked"])
            return str(row["hash"])
        content: str = row["content"]
        digest = hashlib.sha256(table.encode() + b"\n" + content.encode("utf-8")).hexdigest()
        if digest != row["hash"]:
            self.problems.append(
                "block {}: a row of {} is not what was hashed: {}".format(
                    row["block"], table, _name(table, json.loads(content))
                )
            )
        self._take(table, json.loads(content))
        return digest

    def _take(self, table: str, values: Record) -> None:
        if table == "person_merge":
            self.merges.append((values["merged_id"], values["kept_id"]))
        elif table == "record_version":
            key = (values["entity"], values["record_id"])
            version = int(values["version"])
            held = self.latest.get(key)
            if held is None or held[0] < version:
                fields = dict(values.get("fields") or {})
                if not fields and held is not None:
                    fields = held[2]  # a deletion keeps what the record said last
                elif "pseudonyms" in values:  # the personal fields, as keyed hashes
                    fields["pseudonyms"] = values["pseudonyms"]
                if values["entity"] == "track_segment" and "points" in fields:
                    # a track's length is all that is counted of it: not its thousands of fixes
                    fields["km_walked"] = _walked_km(fields.pop("points") or [])
                self.latest[key] = (version, values["op"], fields)

    # ------------------------------------------------------------ the anchors

    def check_anchors(self, key: str | None) -> None:
        verify = _ed25519().verify
        hashes = {}
        for block in _lines(self.folder / "blocks.jsonl"):
            hashes[int(block["number"])] = block["hash"]
        signed_blocks: Set[int] = set()
        anchors = list(_lines(self.folder / "anchors.jsonl"))
        for anchor in anchors:
            where = "the anchor of {} (block {})".format(anchor["anchored_at"], anchor["block"])
            statement = json.dumps(
                {
                    "anchored_at": anchor["anchored_at"],
                    "block": anchor["block"],
                    "form": ANCHOR_FORM,
                    "hash": anchor["hash"],
                    "public_key": anchor["public_key"],
                },
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            try:
                good = verify(
                    base64.b64decode(anchor["public_key"]),
                    statement,
                    base64.b64decode(anchor["signature"]),
                )
            except ValueError:
                good = False
            if not good:
                self.problems.append(f"{where}: its signature is not its key's")
                continue
            if key is not None and anchor["public_key"] != key:
                self.notes.append(f"{where}: signed by another key than --key; not counted")
                continue
            if hashes.get(int(anchor["block"])) != anchor["hash"]:
                self.problems.append(f"{where}: the bundle's block does not have that hash")
                continue
            signed_blocks.add(int(anchor["block"]))
        last = self.head[0]
        if last not in signed_blocks:
            self.problems.append(
                f"block {last}, the bundle's last, is signed by no anchor"
                + (" of the key given" if key is not None else "")
                + ": nothing shows the office stands by this chain"
            )
        keys = sorted({anchor["public_key"] for anchor in anchors})
        self.notes.append("anchors signed by: " + (", ".join(keys) if keys else "no key"))

    # ------------------------------------------------------------ the figures

    def live(self, entity: str) -> Dict[str, Record]:
        return {
            record_id: fields
            for (kind, record_id), (_, op, fields) in self.latest.items()
            if kind == entity and op != "delete"
        }

    def fields_of(self, entity: str, record_id: str) -> Record:
        held = self.latest.get((entity, record_id))
        return held[2] if held is not None else {}

    def kept(self, person_id: str) -> str:
        """The person a merged person counts as."""
        merged_into = dict(self.merges)
        seen = set()
        while person_id in merged_into and person_id not in seen:
            seen.add(person_id)
            person_id = merged_into[person_id]
        return person_id

    def figures(self) -> Dict[str, Any]:
        period = self.manifest["period"]
        starts, ends = _instant(period["starts"]), _instant(period["ends"])
        on = date.fromisoformat(period["to"])
        found: Dict[str, Any] = {"training": {}}
        sessions = self.live("training_session")
        attendances = list(self.live("attendance").values())
        for program in self.manifest["programs"]:
            counted = {
                session_id: fields
                for session_id, fields in sessions.items()
                if fields.get("program") == program
                and fields.get("status") != "cancelled"
                and starts <= _instant(fields["starts_at"]) < ends
            }
            named = {sid for sid, fields in counted.items() if not fields.get("headcount")}
            people: Dict[str, str] = {}
            for attendance in attendances:
                if attendance["session_id"] in named and attendance.get("role") == "participant":
                    person = self.kept(attendance["person_id"])
                    people[person] = str(self.fields_of("person", person).get("sex"))
            women = sum(1 for sex in people.values() if sex == "female")
            counts = [fields["headcount"] for fields in counted.values() if fields.get("headcount")]
            found["training"][program] = {
                "participants": len(people),
                "women": women,
                "men": sum(1 for sex in people.values() if sex == "male"),
                "women_share": round(women / len(people), 3) if people else None,
                "headcount_sessions": len(counts),
                "headcount_people": sum(int(c["female"]) + int(c["male"]) for c in counts),
            }
        households = self.live("household")
        in_force = [
            fields
            for fields in self.live("agreement").values()
            if fields.get("status") == "active"
            and (not fields.get("valid_until") or date.fromisoformat(fields["valid_until"]) >= on)
        ]
        found["agreements"] = {
            "households": len(households),
            "agreements_in_force": len(in_force),
            "households_with_agreement_in_force": len(
                {fields["household_id"] for fields in in_force} & set(households)
            ),
        }
        found["patrols"] = self._patrols(starts, ends)
        found["people"] = self._people()
        return found

    def _patrols(self, starts: datetime, ends: datetime) -> Dict[str, Any]:
        patrols = {
            patrol_id: fields
            for patrol_id, fields in self.live("patrol").items()
            if fields.get("started_at") and starts <= _instant(fields["started_at"]) < ends
        }
        hours = sum(
            (_instant(fields["ended_at"]) - _instant(fields["started_at"])).total_seconds()
            for fields in patrols.values()
            if fields.get("ended_at")
        )
        km = 0.0
        for segment in self.live("track_segment").values():
            if segment.get("patrol_id") in patrols:
                km += segment.get("km_walked", 0.0)
        by_status: Dict[str, int] = {}
        for fields in patrols.values():
            status = str(fields.get("status"))
            by_status[status] = by_status.get(status, 0) + 1
        return {
            "patrols": len(patrols),
            "by_status": dict(sorted(by_status.items())),
            "hours": round(hours / 3600, 1),
            "km_walked": round(km, 1),
        }

    def _people(self) -> Dict[str, Any]:
        merged = {merged for merged, _ in self.merges}
        people = {pid: f for pid, f in self.live("person").items() if pid not in merged}
        documents: Dict[str, int] = {}
        for fields in people.values():
            pseudonym = (fields.get("pseudonyms") or {}).get("doc_number")
            if pseudonym:
                documents[pseudonym] = documents.get(pseudonym, 0) + 1
        return {
            "people": len(people),
            "registered_twice": sum(n - 1 for n in documents.values() if n > 1),
        }


def _instant(text: str) -> datetime:
    """An ISO 8601 moment as Python 3.8's ``fromisoformat`` takes it: a ``Z`` as
    ``+00:00``, a fraction of a second of any length as six digits."""
    text = text.replace("Z", "+00:00")
    found = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", text)
    if found is not None and found.group(2) is not None:
        text = found.group(1) + "." + (found.group(2) + "000000")[:6] + found.group(3)
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _walked_km(points: List[Record]) -> float:
    """A segment's length: its fixes in time order, less the stretches of silence
    longer than ``GAP`` (nobody knows the way taken)."""
    ordered = sorted(points, key=lambda point: _instant(point["t"]))
    km = 0.0
    for one, two in ((ordered[i - 1], ordered[i]) for i in range(1, len(ordered))):
        if _instant(two["t"]) - _instant(one["t"]) <= GAP:
            km += _haversine_km(one["lat"], one["lon"], two["lat"], two["lon"])
    return km


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def _name(table: str, values: Record) -> str:
    if table == "record_version":
        return "{} {} version {}".format(values["entity"], values["record_id"], values["version"])
    return "{} {}".format(table.replace("_", " "), values.get("id"))


def compare(found: Any, claimed: Any, path: str = "") -> List[str]:
    """Each figure the office reports that the records do not give."""
    if isinstance(claimed, dict):
        differences = []
        for name, value in claimed.items():
            here = f"{path}.{name}" if path else name
            if isinstance(found, dict) and name in found:
                differences += compare(found[name], value, here)
            else:
                differences.append(f"{here}: the office reports {value}; not counted here")
        return differences
    if found != claimed:
        return [f"{path}: the office reports {claimed}, the records give {found}"]
    return []


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).parent))
    parser.add_argument("--key", help="the office's public key (base64), as the office gave it")
    args = parser.parse_args(argv)
    try:
        return _check(Path(args.folder), args.key)
    except (OSError, ValueError, KeyError, TypeError) as error:
        # A file missing, or not what fieldsync writes: nothing can be said of the rest.
        print(f"\nNOT VERIFIED: the bundle cannot be read ({type(error).__name__}: {error})")
        return 2


def _check(folder: Path, key: str | None) -> int:
    bundle = Bundle(folder)
    manifest = bundle.manifest
    period = manifest["period"]
    print(f"fieldsync verifier's bundle, made {manifest['made_at']}")
    print(f"period {period['from']} to {period['to']} ({period['timezone']})", end="")
    print(f", programme {manifest['program']}" if manifest.get("program") else "")
    bundle.check_chain()
    bundle.check_anchors(key)
    print(f"\n{bundle.blocks} blocks, {bundle.rows} rows, head {bundle.head[1]}")
    for reason, count in sorted(bundle.withheld.items()):
        print(f"  {count} rows withheld ({reason}): sealed, their content not shown")
    for note in bundle.notes:
        print(f"  {note}")
    found = bundle.figures()
    print("\nThe programme's figures, counted from the records:")
    print(json.dumps(found, indent=2, sort_keys=True))
    differences = compare(found, manifest["office_figures"])
    problems = bundle.problems + differences
    if problems:
        print(f"\nNOT VERIFIED: {len(problems)} problems")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print("\nVERIFIED: every hash checks, the last block is signed, every figure matches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
