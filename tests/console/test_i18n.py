"""Every text a person reads in the console goes through the catalogues, and has its
Spanish: the messages extracted from the templates and the code are all translated,
and no template holds words outside a message."""

from __future__ import annotations

import re

import pytest

from api.console import catalogues
from api.console.i18n import LANGUAGES, translations
from api.console.web import TEMPLATES

# What may stand outside a message in a template: markup, expressions, numbers,
# punctuation, and a few words that are the same in every language.
TAGS = re.compile(
    r"\{%-?\s*trans\b.*?endtrans\s*-?%\}|\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}|<[^>]*>", re.DOTALL
)
SAME_IN_EVERY_LANGUAGE = {"fieldsync", "English", "Español", "GeoJSON", "CSV", "GPX", "QR"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_of_the_console_is_in_the_catalogues(language: str) -> None:
    absent, empty = catalogues.gaps(language)

    assert absent == [], f"run `make messages NEW=<part>`: {absent}"
    if language == "es":
        assert empty == [], f"translate these in api/console/locale/es/: {empty}"


def test_no_template_holds_words_outside_a_message() -> None:
    found = {}
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = TAGS.sub(" ", path.read_text())
        text = re.sub(r"&[a-z]+;|&#\d+;", " ", text)
        words = [w for w in re.findall(r"[^\W\d_]{2,}", text) if w not in SAME_IN_EVERY_LANGUAGE]
        if words:
            found[path.name] = words
    assert found == {}


def test_both_catalogues_load_and_translate() -> None:
    assert translations("es").gettext("Sign in") == "Ingresar"
    assert translations("en").gettext("Sign in") == "Sign in"
