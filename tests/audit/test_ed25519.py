"""The auditors' Ed25519 verifier, against the ``cryptography`` package that signs in
the office and against RFC 8032's test vectors; and what it must refuse."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.audit import ed25519
from sync.audit.ed25519 import L, verify

# RFC 8032, section 7.1, tests 1 and 2: secret key, public key, message, signature.
RFC_VECTORS = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
        "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da08"
        "5ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]

MESSAGE = b"block 1204: 9f2c...e1, signed by the office"


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def flip(data: bytes, index: int, mask: int = 1) -> bytes:
    changed = bytearray(data)
    changed[index] ^= mask
    return bytes(changed)


def cryptography_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    key = Ed25519PublicKey.from_public_bytes(public_key)
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@pytest.fixture(scope="module")
def office() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    "message", [b"", b"abc", bytes(range(256)) * 40], ids=["empty", "short", "10kB"]
)
def test_a_signature_made_by_the_office_key_verifies(
    office: Ed25519PrivateKey, message: bytes
) -> None:
    assert verify(public_bytes(office), message, office.sign(message))


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC_VECTORS)
def test_the_rfc_8032_test_vectors_verify(
    secret: str, public: str, message: str, signature: str
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(secret))
    assert public_bytes(key).hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature
    assert verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))


def test_a_flipped_bit_in_the_message_fails(office: Ed25519PrivateKey) -> None:
    signature = office.sign(MESSAGE)
    assert not verify(public_bytes(office), flip(MESSAGE, 0), signature)


@pytest.mark.parametrize("index", [0, 17, 31], ids=["first", "middle", "last"])
def test_a_flipped_bit_in_r_fails(office: Ed25519PrivateKey, index: int) -> None:
    signature = office.sign(MESSAGE)
    assert not verify(public_bytes(office), MESSAGE, flip(signature, index))


@pytest.mark.parametrize("index", [32, 50, 63], ids=["first", "middle", "last"])
def test_a_flipped_bit_in_s_fails(office: Ed25519PrivateKey, index: int) -> None:
    signature = office.sign(MESSAGE)
    assert not verify(public_bytes(office), MESSAGE, flip(signature, index))


@pytest.mark.parametrize("index", [0, 17, 31], ids=["first", "middle", "last"])
def test_a_flipped_bit_in_the_public_key_fails(office: Ed25519PrivateKey, index: int) -> None:
    signature = office.sign(MESSAGE)
    assert not verify(flip(public_bytes(office), index), MESSAGE, signature)


@pytest.mark.parametrize(
    ("key_length", "signature_length"), [(31, 64), (33, 64), (0, 64), (32, 63), (32, 65), (32, 0)]
)
def test_a_key_or_signature_of_the_wrong_length_fails(
    office: Ed25519PrivateKey, key_length: int, signature_length: int
) -> None:
    public_key = (public_bytes(office) + bytes(1))[:key_length]
    signature = (office.sign(MESSAGE) + bytes(1))[:signature_length]
    assert not verify(public_key, MESSAGE, signature)


def test_a_non_canonical_s_plus_l_fails(office: Ed25519PrivateKey) -> None:
    signature = office.sign(MESSAGE)
    s = int.from_bytes(signature[32:], "little")
    bigger = signature[:32] + (s + L).to_bytes(32, "little")
    assert verify(public_bytes(office), MESSAGE, signature)
    assert not verify(public_bytes(office), MESSAGE, bigger)


@pytest.mark.parametrize(
    "public_key",
    [
        (2).to_bytes(32, "little"),  # (y^2 - 1) / (d y^2 + 1) has no square root for y = 2
        (2**255 - 1).to_bytes(32, "little"),  # y >= p
        (1 | 1 << 255).to_bytes(32, "little"),  # y = 1 gives x = 0, which cannot be odd
    ],
    ids=["no-square-root", "y-not-below-p", "x-zero-odd"],
)
def test_a_public_key_that_is_not_a_point_fails(
    office: Ed25519PrivateKey, public_key: bytes
) -> None:
    assert not verify(public_key, MESSAGE, office.sign(MESSAGE))


def test_an_r_that_is_not_a_point_fails(office: Ed25519PrivateKey) -> None:
    signature = office.sign(MESSAGE)
    assert not verify(public_bytes(office), MESSAGE, (2).to_bytes(32, "little") + signature[32:])


@settings(max_examples=30, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=200),
    index=st.integers(min_value=0, max_value=63),
    mask=st.integers(min_value=1, max_value=255),
)
def test_it_agrees_with_cryptography_on_true_and_tampered_signatures(
    seed: bytes, message: bytes, index: int, mask: int
) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public_key, signature = public_bytes(key), key.sign(message)
    tampered = flip(signature, index, mask)
    assert verify(public_key, message, signature) is True
    assert cryptography_verifies(public_key, message, signature) is True
    assert verify(public_key, message, tampered) is cryptography_verifies(
        public_key, message, tampered
    )


@pytest.mark.parametrize("script", ["ed25519.py", "verify_bundle.py"])
def test_it_imports_only_the_standard_library_and_parses_as_python_3_8(script: str) -> None:
    """The bundle's two files run where a verifier has only an older Python."""
    tree = ast.parse(Path(ed25519.__file__).with_name(script).read_text(), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_the_bundles_scripts_need_no_python_newer_than_3_8() -> None:
    """What the syntax check above cannot see: a name of the standard library added
    later (``datetime.UTC`` is 3.11's), read by vermin."""
    here = Path(ed25519.__file__).parent
    checked = subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), "--no-tips", "--violations", "-t=3.8-",
         str(here / "ed25519.py"), str(here / "verify_bundle.py")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
