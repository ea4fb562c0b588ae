"""The catalog of record types devices sync: every field domain's specs, handed to
the engine (``sync.engine``), which names none of them itself.

This is the one place that knows every domain; adding a record type is a spec in its
domain and a line here.
"""

from __future__ import annotations

from sync.engine.entities import Catalog
from sync.patrols import entities as patrols
from sync.people import entities as people
from sync.training import entities as training

# Reference data is pulled like records but made only by admins, never pushed.
READ_ONLY = ("sector", "community", "observation_category")

CATALOG = Catalog(
    (*patrols.ENTITIES, *people.ENTITIES, *training.ENTITIES),
    read_only=READ_ONLY,
)
