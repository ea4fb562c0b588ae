"""The console's words in Spanish and English: gettext catalogues read with Babel.

Every text a person reads in the console is a message of ``locale/<lang>/*.po`` (one
file per part of the console, so that parts grow apart), looked up through Babel's
``Translations``: templates with Jinja's ``{% trans %}`` and ``_()``, Python with
``Words.gettext``. Messages are written in English in the code and translated in the
catalogues; Spanish is the console's first language, English is one click away.

The catalogues are compiled in memory when the app starts (no ``.mo`` file to build
or to forget), and a message without its Spanish is caught by the tests
(``tests/console/test_i18n.py``).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = Path(__file__).parent / "locale"
LANGUAGES = ("es", "en")
DEFAULT_LANGUAGE = "es"


def catalogue_files(language: str) -> list[Path]:
    return sorted((LOCALES / language).glob("*.po"))


@cache
def translations(language: str) -> Translations:
    """Every catalogue of ``language``, merged, ready for gettext."""
    merged: Translations | None = None
    for path in catalogue_files(language):
        with path.open("rb") as source:
            catalogue = read_po(source, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        read = Translations(fp=compiled)
        merged = read if merged is None else merged.merge(read)
    if merged is None:
        raise RuntimeError(f"no catalogue for {language} in {LOCALES / language}")
    return merged


def language_of(asked: str | None) -> str:
    """A language the console speaks: the one asked for, or Spanish."""
    return asked if asked in LANGUAGES else DEFAULT_LANGUAGE


def N_(message: str) -> str:  # noqa: N802 (gettext's name for a message marked, not translated)
    """Mark ``message`` for the catalogues; it is translated where it is shown."""
    return message
