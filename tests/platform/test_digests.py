"""``digests.sha256``: the SHA-256 of ``hashlib``, hashed in pieces that keep the GIL."""

import hashlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sync.platform import digests

PIECE = digests.PIECE


@given(st.binary(max_size=5 * PIECE))
@example(b"")
@example(b"x" * (digests.KEPT_BELOW - 1))
@example(b"x" * digests.KEPT_BELOW)
@example(b"x" * PIECE * 2)
@example(b"x" * (PIECE * 2 + 1))
def test_the_digest_is_hashlib_s(data: bytes) -> None:
    assert digests.sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()


class _Recorder:
    """A stand-in for ``hashlib``: records the length of every piece it is given."""

    def __init__(self) -> None:
        self.pieces: list[int] = []

    def sha256(self, data: bytes = b"") -> "_Recorder":
        self.update(data)
        return self

    def update(self, data: bytes | memoryview) -> None:
        self.pieces.append(len(data))


@given(st.integers(min_value=0, max_value=20_000))
def test_no_piece_is_long_enough_to_let_go_of_the_gil(size: int) -> None:
    recorder = _Recorder()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(digests, "hashlib", recorder)
        digests.sha256(b"x" * size)
    assert sum(recorder.pieces) == size
    assert max(recorder.pieces) < digests.KEPT_BELOW
