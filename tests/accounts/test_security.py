"""Unit tests of sync/security.py: access tokens, password hashes, enrollment codes.

Nothing here touches a database, so these run once, not once per backend.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from sync.accounts import security
from sync.platform.settings import Settings
from tests.conftest import make_settings

OTHER_KEY = "another-secret-key-that-is-also-long-enough-9876543210"
USER_ID = uuid.UUID("0b7e7a2c-6c1f-4d0e-9a51-1f2d3c4b5a69")
FAMILY_ID = uuid.UUID("6d3c1e0f-2a4b-4c5d-8e9f-a0b1c2d3e4f5")
DEVICE_ID = uuid.UUID("a8d2f00d-1234-4abc-9def-0123456789ab")


@pytest.fixture(scope="module")
def settings() -> Settings:
    return make_settings("sqlite:///unused-by-these-tests.db")


def _now() -> datetime:
    return datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _unb64_json(part: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    """Claims exactly as issue_access_token writes them, with ``changes`` applied."""
    now = _now()
    claims: dict[str, Any] = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": str(USER_ID),
        "fam": str(FAMILY_ID),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return claims


def _issue(settings: Settings, **kwargs: Any) -> str:
    arguments: dict[str, Any] = {
        "user_id": USER_ID,
        "family_id": FAMILY_ID,
        "device_id": None,
        "now": _now(),
        "settings": settings,
        **kwargs,
    }
    return security.issue_access_token(**arguments)


def _refused(token: str, settings: Settings) -> None:
    with pytest.raises(security.InvalidAccessToken):
        security.decode_access_token(token, settings)


# ---------------------------------------------------------------- access tokens


def test_an_issued_access_token_decodes_to_the_user_and_family(settings: Settings) -> None:
    now = _now()
    claims = security.decode_access_token(_issue(settings, now=now), settings)
    assert claims.user_id == USER_ID
    assert claims.family_id == FAMILY_ID
    assert claims.device_id is None
    expected_exp = int((now + timedelta(minutes=settings.access_token_minutes)).timestamp())
    assert claims.expires_at == datetime.fromtimestamp(expected_exp, UTC)


def test_an_issued_device_token_names_the_device(settings: Settings) -> None:
    claims = security.decode_access_token(_issue(settings, device_id=DEVICE_ID), settings)
    assert claims.device_id == DEVICE_ID


def test_an_issued_access_token_is_signed_with_hs256(settings: Settings) -> None:
    assert jwt.get_unverified_header(_issue(settings))["alg"] == "HS256"


def test_a_token_with_alg_none_is_refused(settings: Settings) -> None:
    header = _b64_json({"alg": "none", "typ": "JWT"})
    token = f"{header}.{_b64_json(_claims(settings))}."
    _refused(token, settings)


def test_a_token_with_alg_none_and_the_real_signature_is_refused(settings: Settings) -> None:
    _, payload, signature = _issue(settings).split(".")
    header = _b64_json({"alg": "none", "typ": "JWT"})
    _refused(f"{header}.{payload}.{signature}", settings)


def test_a_token_signed_with_another_key_is_refused(settings: Settings) -> None:
    token = jwt.encode(_claims(settings), OTHER_KEY, algorithm="HS256")
    _refused(token, settings)


def test_a_token_issued_under_another_key_is_refused(settings: Settings) -> None:
    other = make_settings("sqlite:///unused-by-these-tests.db", secret_key=OTHER_KEY)
    _refused(_issue(other), settings)


def test_a_token_whose_payload_was_tampered_with_is_refused(settings: Settings) -> None:
    header, payload, signature = _issue(settings).split(".")
    claims = _unb64_json(payload)
    claims["sub"] = str(uuid.uuid4())
    _refused(f"{header}.{_b64_json(claims)}.{signature}", settings)


def test_a_token_whose_signature_was_tampered_with_is_refused(settings: Settings) -> None:
    header, payload, signature = _issue(settings).split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    _refused(f"{header}.{payload}.{flipped}", settings)


def test_a_token_expired_beyond_the_leeway_is_refused(settings: Settings) -> None:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    beyond = timedelta(seconds=security.CLOCK_LEEWAY_SECONDS + 5)
    _refused(_issue(settings, now=_now() - lifetime - beyond), settings)


def test_a_token_expired_within_the_leeway_is_still_accepted(settings: Settings) -> None:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    within = timedelta(seconds=security.CLOCK_LEEWAY_SECONDS - 5)
    claims = security.decode_access_token(
        _issue(settings, now=_now() - lifetime - within), settings
    )
    assert claims.user_id == USER_ID


def test_a_token_issued_in_the_future_is_refused(settings: Settings) -> None:
    _refused(_issue(settings, now=_now() + timedelta(hours=1)), settings)


@pytest.mark.parametrize("claim", security.REQUIRED_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(settings: Settings, claim: str) -> None:
    claims = _claims(settings)
    del claims[claim]
    token = jwt.encode(claims, settings.signing_key(), algorithm="HS256")
    _refused(token, settings)


def test_the_required_claims_are_the_documented_ones() -> None:
    assert set(security.REQUIRED_CLAIMS) == {"exp", "iat", "iss", "aud", "sub", "fam", "typ"}


def test_a_hand_built_token_with_every_claim_is_accepted(settings: Settings) -> None:
    """The control for the refusals around it: the claims they start from are good."""
    token = jwt.encode(_claims(settings), settings.signing_key(), algorithm="HS256")
    assert security.decode_access_token(token, settings).family_id == FAMILY_ID


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("iss", "someone-else"),
        ("aud", "another-api"),
        ("aud", ["another-api"]),
        ("typ", "refresh"),
        ("typ", "id"),
        ("typ", None),
        ("sub", "not-a-uuid"),
        ("fam", "not-a-uuid"),
        ("sub", 42),
        ("dev", "not-a-uuid"),
        ("exp", "tomorrow"),
    ],
)
def test_a_token_with_a_wrong_claim_is_refused(settings: Settings, claim: str, value: Any) -> None:
    token = jwt.encode(_claims(settings, **{claim: value}), settings.signing_key(), "HS256")
    _refused(token, settings)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_a_token_signed_with_another_hmac_algorithm_and_the_same_key_is_refused(
    settings: Settings, algorithm: str
) -> None:
    token = jwt.encode(_claims(settings), settings.signing_key(), algorithm=algorithm)
    _refused(token, settings)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "PS256", "EdDSA"])
def test_a_token_naming_an_asymmetric_algorithm_is_refused(
    settings: Settings, algorithm: str
) -> None:
    """Algorithm confusion: a header naming a public-key algorithm, HMAC-signed with the
    shared secret as if it were the public key."""
    header = _b64_json({"alg": algorithm, "typ": "JWT"})
    signing_input = f"{header}.{_b64_json(_claims(settings))}"
    mac = hmac.new(settings.signing_key().encode(), signing_input.encode(), hashlib.sha256)
    _refused(f"{signing_input}.{_b64(mac.digest())}", settings)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "x",
        "not-a-token",
        "a.b.c",
        "..",
        "a.b",
        "a.b.c.d",
        "Bearer abc",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln",
        "\x00\xff\u00e9",
        "é.ñ.ü",
    ],
)
def test_a_garbage_string_is_refused(settings: Settings, garbage: str) -> None:
    _refused(garbage, settings)


# ---------------------------------------------------------------- passwords


def test_a_password_verifies_against_its_own_hash(settings: Settings) -> None:
    password_hash = security.hash_password("correct horse battery", settings)
    assert password_hash.startswith("$argon2id$")
    assert security.verify_password("correct horse battery", password_hash, settings) is True


def test_a_wrong_password_does_not_verify(settings: Settings) -> None:
    password_hash = security.hash_password("correct horse battery", settings)
    assert security.verify_password("correct horse staple", password_hash, settings) is False
    assert security.verify_password("", password_hash, settings) is False
    assert security.verify_password("Correct horse battery", password_hash, settings) is False


def test_the_same_password_hashes_differently_each_time(settings: Settings) -> None:
    first = security.hash_password("correct horse battery", settings)
    second = security.hash_password("correct horse battery", settings)
    assert first != second


def test_a_password_does_not_verify_without_a_hash(settings: Settings) -> None:
    assert security.verify_password("correct horse battery", None, settings) is False


@pytest.mark.parametrize(
    "bad_hash",
    [
        "",
        "not-a-hash",
        "correct horse battery",
        "$argon2id$v=19$m=64,t=1,p=4$garbage$garbage",
        "$2b$12$abcdefghijklmnopqrstuuJ6jYB8h2SO3Vdd7/SjV9qGhI3wvG5Gu",
    ],
)
def test_a_malformed_hash_does_not_verify(settings: Settings, bad_hash: str) -> None:
    assert security.verify_password("correct horse battery", bad_hash, settings) is False


# ---------------------------------------------------------------- secrets


def test_a_secret_is_stored_as_its_sha256_hex() -> None:
    assert security.sha256("abc") == hashlib.sha256(b"abc").hexdigest()


def test_refresh_secrets_are_long_and_unique() -> None:
    secrets = {security.new_refresh_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(len(secret) >= 43 for secret in secrets)


# ---------------------------------------------------------------- enrollment codes

CODE_FORMAT = re.compile(
    "^{0}{{4}}-{0}{{4}}-{0}{{4}}-{0}{{4}}$".format(f"[{security.CODE_ALPHABET}]")
)


def test_the_code_alphabet_has_nothing_to_misread() -> None:
    assert len(security.CODE_ALPHABET) == 32
    assert len(set(security.CODE_ALPHABET)) == 32
    assert not set("ILOU") & set(security.CODE_ALPHABET)


def test_an_enrollment_code_reads_xxxx_xxxx_xxxx_xxxx_from_the_alphabet() -> None:
    codes = [security.new_enrollment_code() for _ in range(200)]
    for code in codes:
        assert CODE_FORMAT.match(code), code
    assert len(set(codes)) == len(codes)


def test_a_fresh_enrollment_code_is_already_normal() -> None:
    code = security.new_enrollment_code()
    assert security.normalize_enrollment_code(code) == code


@pytest.mark.parametrize(
    ("typed", "issued"),
    [
        ("7K3M-9QRT-VWXY-Z012", "7K3M-9QRT-VWXY-Z012"),
        ("7k3m-9qrt-vwxy-z012", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M9QRTVWXYZ012", "7K3M-9QRT-VWXY-Z012"),
        ("7k3m9qrtvwxyz012", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M 9QRT VWXY Z012", "7K3M-9QRT-VWXY-Z012"),
        ("  7K3M - 9QRT - VWXY - Z012  ", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M-9QRT-VWXY-ZO12", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M-9QRT-VWXY-Zo12", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M-9QRT-VWXY-Z0I2", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M-9QRT-VWXY-Z0i2", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M-9QRT-VWXY-Z0L2", "7K3M-9QRT-VWXY-Z012"),
        ("7K3M-9QRT-VWXY-Z0l2", "7K3M-9QRT-VWXY-Z012"),
        ("oil0 lOIi", "0110-1011"),
        ("7k3m 9qrt-vwxyzoi2", "7K3M-9QRT-VWXY-Z012"),
    ],
)
def test_a_typed_enrollment_code_is_read_as_issued(typed: str, issued: str) -> None:
    assert security.normalize_enrollment_code(typed) == issued


def test_every_misreading_of_a_fresh_code_normalizes_back_to_it() -> None:
    for _ in range(50):
        code = security.new_enrollment_code()
        typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
        assert security.normalize_enrollment_code(typed) == code
