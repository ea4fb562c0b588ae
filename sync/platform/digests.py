"""SHA-256 of a record's bytes that keeps the GIL.

CPython's ``hashlib`` lets go of the GIL to hash 2,048 bytes or more, and must then win
it back. Beside a thread of the same process that is computing, that takes up to the
interpreter's switch interval (5 ms): measured on a 3 kB text, 1.7 ms a hash against
3 µs alone. A push hashes each change it receives (``sync.engine.prepare``) and each
version it writes (``sync.platform.chain``), and a ranger's track segment is several
kilobytes; its process's other threads parse the next batch meanwhile, and on SQLite
the one hashing holds the write lock. So the text is hashed in pieces shorter than
that, none of which lets go: the same digest, for a few tenths of a microsecond more.

Files (photos, uploads) are hashed by ``hashlib`` itself: letting go of the GIL is
right for megabytes.
"""

import hashlib

# Below this many bytes, ``hashlib`` keeps the GIL (``HASHLIB_GIL_MINSIZE``).
KEPT_BELOW = 2048
PIECE = KEPT_BELOW - 1


def sha256(data: bytes) -> "hashlib._Hash":
    """``hashlib.sha256(data)``, computed without letting go of the GIL."""
    if len(data) < KEPT_BELOW:
        return hashlib.sha256(data)
    digest = hashlib.sha256()
    view = memoryview(data)
    for start in range(0, len(view), PIECE):
        digest.update(view[start : start + PIECE])
    return digest
