"""``schemas.ids``: random ids as ``uuid.uuid4()`` makes them, from a pool read ahead."""

import os
import threading
import uuid

from schemas import ids


def test_ids_are_random_version_4_uuids_none_twice() -> None:
    made = [ids.new_id() for _ in range(3 * ids.POOL_BYTES // 16)]  # the pool read again
    assert len(set(made)) == len(made)
    assert {made_id.version for made_id in made} == {4}
    assert {made_id.variant for made_id in made} == {uuid.RFC_4122}


def test_bytes_are_handed_out_once_whatever_the_count() -> None:
    drawn = [ids.random_bytes(count) for count in (1, 7, ids.POOL_BYTES, 3, ids.POOL_BYTES + 5)]
    assert [len(piece) for piece in drawn] == [1, 7, ids.POOL_BYTES, 3, ids.POOL_BYTES + 5]
    assert len({piece for piece in drawn if len(piece) > 4}) == 3


def test_each_thread_draws_its_own_bytes() -> None:
    ids.new_id()  # this thread's pool read
    theirs: list[uuid.UUID] = []
    thread = threading.Thread(target=lambda: theirs.extend(ids.new_id() for _ in range(100)))
    thread.start()
    thread.join()
    ours = [ids.new_id() for _ in range(100)]
    assert not set(ours) & set(theirs)


def test_a_forked_child_does_not_hand_out_its_parent_s_bytes() -> None:
    ids.new_id()  # the pool read, and copied into the child
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.write(writing, ids.new_id().bytes)
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    childs = uuid.UUID(bytes=os.read(reading, 16))
    os.close(reading)
    assert childs != ids.new_id()
