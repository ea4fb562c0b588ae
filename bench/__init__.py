"""The sync benchmark: ``make bench`` / ``fieldsync bench`` (docs/performance.md).

It serves the real ``fieldsync serve`` in its own process, drives it over loopback
from another process as a fleet of tablets would, and measures what a programme
running thousands of tablets cares about: records pushed and pulled per second,
batch latency, server memory, how all of it grows with the records held, and how
far the push is from a plain ``INSERT`` of the same rows; and, with years of
patrols held, how fast a ranger lead's review queue and a patrol's detail answer;
and, on the demo programme, how fast the office console's pages do.

    generator.py  realistic Alto Mayo records (names, places, tracks), seeded and pure
    workload.py   a tablet's changes: batches of creates and updates, with expected results
    rows.py       a record's table row and bookkeeping, shaped as push stores them
    seed.py       millions of records straight into the database, for the scale runs
    floor.py      the floor: a plain batched INSERT … ON CONFLICT DO NOTHING of the same rows
    server.py     a real ``fieldsync serve`` process on a free port
    fleet.py      sectors, communities, users and enrolled devices, made over HTTP
    load.py       the load process: tablets pushing and pulling, timed
    review.py     ranger leads' queue, lists and patrol details, timed and checked
    console.py    the office console's pages of the demo programme, read as a browser signed in
    memory.py     the server's resident memory, sampled from /proc
    report.py     the table on stdout and the JSON file
    run.py        the command: one run per backend, in order

Nothing in ``sync``, ``schemas`` or ``api`` imports this package (``api.cli`` only
hands ``fieldsync bench`` over to it), so the server never loads it.
"""
