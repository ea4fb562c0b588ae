"""Keep the catalogues whole: ``python -m api.console.catalogues [--add FILE]``.

Extracts every message of the console (templates' ``{% trans %}`` and ``_()``, and
``N_()``/``gettext`` in Python), and says which ones no catalogue of a language holds
yet, or holds without a translation. With ``--add FILE`` it appends the messages no
catalogue holds to ``locale/<lang>/FILE.po`` of each language: empty in Spanish (a
person translates them), the message itself in English. ``make messages`` runs it;
the tests fail while any message lacks its Spanish (``tests/console/test_i18n.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from api.console.i18n import LANGUAGES, LOCALES, catalogue_files

CONSOLE = Path(__file__).parent
METHODS = [
    ("**.py", "python"),
    ("templates/**.html", "jinja2"),
]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def messages() -> dict[str, list[str]]:
    """Every message of the console, with where it is used."""
    found: dict[str, list[str]] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
        CONSOLE, METHODS, options_map=OPTIONS, keywords=KEYWORDS
    ):
        text = message[0] if isinstance(message, tuple) else message
        if text:
            found.setdefault(text, []).append(filename)
    return found


def held(language: str) -> dict[str, str]:
    """Each message the language's catalogues hold, with its translation."""
    translated: dict[str, str] = {}
    for path in catalogue_files(language):
        with path.open("rb") as source:
            for entry in read_po(source, locale=language):
                if entry.id and isinstance(entry.id, str):
                    text = entry.string if isinstance(entry.string, str) else ""
                    translated[entry.id] = translated.get(entry.id) or text
    return translated


def gaps(language: str) -> tuple[list[str], list[str]]:
    """The messages no catalogue of ``language`` holds, and those held untranslated."""
    translated = held(language)
    wanted = messages()
    absent = sorted(m for m in wanted if m not in translated)
    empty = sorted(m for m in wanted if m in translated and not translated[m])
    return absent, empty


def add(name: str) -> None:
    for language in LANGUAGES:
        absent, _ = gaps(language)
        if not absent:
            continue
        path = LOCALES / language / f"{name}.po"
        if path.exists():
            with path.open("rb") as source:
                catalogue = read_po(source, locale=language)
        else:
            catalogue = Catalog(
                locale=language, project="fieldsync console", copyright_holder="fieldsync"
            )
            catalogue.fuzzy = False
        for message in absent:
            catalogue.add(message, message if language == "en" else "")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            write_po(target, catalogue, width=100, omit_header=False, sort_output=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--add", metavar="FILE", help="append what is missing to FILE.po")
    args = parser.parse_args(argv)
    if args.add:
        add(args.add)
    missing = 0
    for language in LANGUAGES:
        absent, empty = gaps(language)
        for message in absent:
            print(f"{language}: not in any catalogue: {message!r}")  # noqa: T201
        for message in empty:
            print(f"{language}: not translated: {message!r}")  # noqa: T201
        missing += len(absent) + (len(empty) if language == "es" else 0)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
