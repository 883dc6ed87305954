"""scripts/compose_env.py: a `.env` with every secret filled, never overwriting one that exists."""

import base64
import importlib.util
import re
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


def test_every_variable_gets_a_value_and_secrets_differ(tmp_path: Path) -> None:
    script = load_script()
    out = tmp_path / ".env"
    assert script.main(["--out", str(out)]) == 0
    values = parse(out.read_text())
    assert set(values) == set(parse((ROOT / ".env.example").read_text()))
    assert all(v.strip() for v in values.values())
    assert len(base64.urlsafe_b64decode(values["AIRFLOW_FERNET_KEY"])) == 32
    secrets = [values[k] for k in ("AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "WAREHOUSE_PASSWORD")]
    assert len(set(secrets)) == 3
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{40,}", s) for s in secrets)  # URL-safe: they go into URLs
    assert out.stat().st_mode & 0o077 == 0


def test_an_existing_env_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ".env"
    out.write_text("KEEP=me\n")
    assert load_script().main(["--out", str(out)]) == 1
    assert out.read_text() == "KEEP=me\n"
    assert "exists" in capsys.readouterr().err
