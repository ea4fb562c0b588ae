"""Text as people search it: accents and case do not matter (*Núñez* is *nunez*)."""

import unicodedata


def folded(text: str) -> str:
    """Lower case, accents stripped, spaces collapsed: ``"José  Núñez"`` → ``"jose nunez"``.

    Tablets type names as their users do: with or without accents (*Nuñez*, *Nunez*),
    in capitals or not. Compared folded, they are one name.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.split())


def name_key(*parts: str | None) -> str:
    """A person's full name, folded: what search and the duplicate finder compare."""
    return " ".join(folded(part) for part in parts if part and part.strip())
