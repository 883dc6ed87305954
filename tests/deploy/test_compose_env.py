"""scripts/compose_env.py: a `.env` with every secret filled, never overwriting one that exists."""

import base64
import importlib.util
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compose_env", ROOT / "scripts" / "compose_env.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")
    )


LOGIN_PASSWORD = "_AIRFLOW_WWW_USER_PASSWORD"


def test_every_variable_gets_a_value_and_secrets_differ(tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / ".env"
    assert script.main(["--out", str(out)]) == 0
    values = parse(out.read_text())
    assert set(values) == set(parse((ROOT / ".env.example").read_text()))
    assert all(v.strip() for v in values.values())
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    names = (
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "WAREHOUSE_PASSWORD",
        "WAREHOUSE_PIPELINE_PASSWORD",
        LOGIN_PASSWORD,
    )
    secrets = [values[k] for k in names]
    assert len(set(secrets)) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{40,}", s) for s in secrets)  # URL-safe: they go into URLs
    assert out.stat().st_mode & 0o077 == 0


def test_the_start_date_is_the_interval_now_running(tmp_path: Path) -> None:
    """A first start of the Compose stack catches up nothing older than the interval it was set up in."""
    before = datetime.now(UTC)
    out = tmp_path / ".env"
    assert load_script().main(["--out", str(out)]) == 0
    start = datetime.fromisoformat(parse(out.read_text())["ETLML_START_DATE"])
    assert start.utcoffset() == timedelta(0)
    assert (start.minute % 10, start.second, start.microsecond) == (0, 0, 0)
    assert before - timedelta(minutes=10) < start <= datetime.now(UTC)


def test_an_existing_env_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ".env"
    out.write_text("KEEP=me\n")
    assert load_script().main(["--out", str(out)]) == 1
    assert out.read_text() == "KEEP=me\n"
    assert "exists" in capsys.readouterr().err


def test_the_login_password_is_generated_and_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """.env.example ships no login password (admin/admin satisfied compose's check on a published port):
    each .env gets its own, which the script prints once, since .env is the only other place it is."""
    assert parse((ROOT / ".env.example").read_text())[LOGIN_PASSWORD] == ""
    passwords = []
    for name in ("a.env", "b.env"):
        assert load_script().main(["--out", str(tmp_path / name)]) == 0
        password = parse((tmp_path / name).read_text())[LOGIN_PASSWORD]
        out = capsys.readouterr().out
        assert out.count(password) == 1
        assert f"login admin / {password}" in out
        passwords.append(password)
    assert passwords[0] != passwords[1]
    assert all(len(p) >= 20 and p != "admin" for p in passwords)
