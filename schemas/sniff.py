"""What a file really is, read from its first bytes (by the server on an upload's last
byte, and by the reference client when a file is attached): the six types fieldsync keeps
each begin with a signature their specifications fix, so a short table answers
exactly, where a general guesser (libmagic and its ports) would answer for thousands
of types and need a system library."""

from __future__ import annotations


def sniff(head: bytes) -> str | None:
    """The type of a file that begins with ``head``, if it is one we keep."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head[4:8] == b"ftyp" and head[8:12] in (b"M4A ", b"M4B ", b"mp42", b"isom", b"dash"):
        return "audio/mp4"
    return None
