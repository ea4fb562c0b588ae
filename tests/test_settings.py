"""Settings: no unsafe secret outside development, a shared local key in development,
and every limit read from its ``FIELDSYNC_*`` variable."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.app import create_app
from sync.platform.settings import MIN_SECRET_KEY_LENGTH, Environment, Settings, SettingsError

SETTINGS_VARIABLES = [
    "FIELDSYNC_ENV",
    "FIELDSYNC_SECRET_KEY",
    "FIELDSYNC_DATABASE_URL",
    "FIELDSYNC_MAX_BATCH",
    "FIELDSYNC_MAX_BODY_BYTES",
    "FIELDSYNC_PULL_DEFAULT_LIMIT",
    "FIELDSYNC_PULL_MAX_LIMIT",
    "FIELDSYNC_ACCESS_TOKEN_MINUTES",
    "FIELDSYNC_ARGON2_TIME_COST",
    "FIELDSYNC_ARGON2_MEMORY_KIB",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``FIELDSYNC_*`` from the machine running the tests, and a scratch working folder
    so that no development key is written into the project."""
    for name in SETTINGS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_production_is_the_default_environment() -> None:
    assert settings().env is Environment.production


def test_production_without_a_secret_key_refuses_to_sign(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="FIELDSYNC_SECRET_KEY"):
        settings(env="production").signing_key()
    assert not (tmp_path / ".fieldsync").exists()  # no key is made up in production


def test_production_without_a_secret_key_refuses_to_build_the_app(tmp_path: Path) -> None:
    unsafe = settings(env="production", database_url=f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SettingsError, match="FIELDSYNC_SECRET_KEY"):
        create_app(unsafe)


@pytest.mark.parametrize("environment", ["production", "development"])
def test_a_secret_key_shorter_than_32_characters_is_refused(environment: str) -> None:
    short = settings(env=environment, secret_key="k" * (MIN_SECRET_KEY_LENGTH - 1))
    with pytest.raises(SettingsError, match="at least 32"):
        short.signing_key()
    with pytest.raises(SettingsError, match="at least 32"):
        create_app(short)


@pytest.mark.parametrize("length", [MIN_SECRET_KEY_LENGTH, 64])
def test_a_secret_key_of_32_characters_or_more_is_the_signing_key(length: int) -> None:
    key = secrets.token_urlsafe(48)[:length]
    assert settings(env="production", secret_key=key).signing_key() == key


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("changeme-changeme-changeme-changeme", "placeholder 'changeme'"),
        ("k" * 64, "fewer than 12 different characters"),
        ("abcdefghijklm-abcdefghijklm-abcdefghijklm", "repeats 'abcd'"),
        ("this-is-an-EXAMPLE-key-0123456789abcdef", "placeholder 'example'"),
    ],
)
def test_a_long_but_guessable_secret_key_is_refused_with_the_reason(key: str, why: str) -> None:
    """The check once counted only the length."""
    weak = settings(env="production", secret_key=key)
    with pytest.raises(SettingsError, match=why):
        weak.signing_key()
    with pytest.raises(SettingsError, match="too easy to guess"):
        create_app(weak)


def test_development_without_a_key_generates_one_in_the_working_folder(tmp_path: Path) -> None:
    key = settings(env="development").signing_key()

    path = tmp_path / ".fieldsync" / "secret_key"
    assert path.read_text().strip() == key
    assert len(key) >= MIN_SECRET_KEY_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no leftovers


def test_development_processes_share_the_generated_key() -> None:
    first = settings(env="development").signing_key()
    second = settings(env="development").signing_key()
    assert first == second


def test_development_uses_a_set_secret_key_over_the_generated_one(tmp_path: Path) -> None:
    settings(env="development").signing_key()
    key = secrets.token_urlsafe(30)
    assert settings(env="development", secret_key=key).signing_key() == key


def test_settings_are_read_from_fieldsync_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = secrets.token_urlsafe(36)
    monkeypatch.setenv("FIELDSYNC_ENV", "development")
    monkeypatch.setenv("FIELDSYNC_SECRET_KEY", key)
    monkeypatch.setenv("FIELDSYNC_DATABASE_URL", "postgresql+psycopg://u@db:5432/fieldsync")
    monkeypatch.setenv("FIELDSYNC_MAX_BATCH", "7")
    monkeypatch.setenv("FIELDSYNC_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("FIELDSYNC_PULL_DEFAULT_LIMIT", "50")
    monkeypatch.setenv("FIELDSYNC_PULL_MAX_LIMIT", "60")
    monkeypatch.setenv("FIELDSYNC_ACCESS_TOKEN_MINUTES", "5")
    monkeypatch.setenv("FIELDSYNC_ARGON2_MEMORY_KIB", "64")

    read = settings()

    assert read.env is Environment.development
    assert read.signing_key() == key
    assert read.database_url == "postgresql+psycopg://u@db:5432/fieldsync"
    assert read.max_batch == 7
    assert read.max_body_bytes == 4096
    assert read.pull_default_limit == 50
    assert read.pull_max_limit == 60
    assert read.access_token_minutes == 5
    assert read.argon2_memory_kib == 64


def test_the_documented_defaults_hold_without_variables() -> None:
    read = settings()
    assert read.max_batch == 1000
    assert read.max_body_bytes == 10 * 1024 * 1024
    assert read.pull_default_limit == 500
    assert read.pull_max_limit == 5000
    assert read.database_url == "sqlite:///fieldsync.db"


@pytest.mark.parametrize(
    ("name", "value"),
    [("FIELDSYNC_MAX_BATCH", "0"), ("FIELDSYNC_MAX_BATCH", "many"), ("FIELDSYNC_ENV", "staging")],
)
def test_an_invalid_environment_variable_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        settings()


def test_a_dot_env_file_in_the_working_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("FIELDSYNC_MAX_BATCH=9\n")
    assert Settings().max_batch == 9
