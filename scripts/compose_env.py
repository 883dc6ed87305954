"""Write `.env` for docker compose from `.env.example`, generating every secret left empty there.

    python3 scripts/compose_env.py            # refuses to overwrite an existing .env

Standard library only, so it runs before anything is installed. ``ETLML_START_DATE`` gets the interval
now running, so a first start does not backfill. The UI's login password
(_AIRFLOW_WWW_USER_PASSWORD) is one of the secrets it generates; it prints it once, and from then on
it is only in .env.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USERNAME, PASSWORD = "_AIRFLOW_WWW_USER_USERNAME", "_AIRFLOW_WWW_USER_PASSWORD"


def secret_for(name: str) -> str:
    """A fresh value for a setting left empty in ``.env.example``: a secret, or for
    ``ETLML_START_DATE`` the start of the 10-minute interval now running (no backfill on first start)."""
    if name == "ETLML_START_DATE":
        now = datetime.now(UTC)
        return now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0).isoformat()
    if name == "AIRFLOW_FERNET_KEY":
        return base64.urlsafe_b64encode(os.urandom(32)).decode()  # the format Fernet.generate_key() has
    return secrets.token_urlsafe(32)


def render(example: str) -> str:
    """``.env.example`` with each empty ``NAME=`` line given a fresh secret."""
    lines = []
    for line in example.splitlines():
        name, sep, value = line.partition("=")
        empty = sep and not line.lstrip().startswith("#") and value.strip() == ""
        lines.append(f"{name}={secret_for(name.strip())}" if empty else line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--example", type=Path, default=ROOT / ".env.example")
    parser.add_argument("--out", type=Path, default=ROOT / ".env")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"{args.out} exists; remove it first to generate new secrets", file=sys.stderr)
        return 1
    text = render(args.example.read_text())
    args.out.touch(mode=0o600)
    args.out.write_text(text)
    args.out.chmod(0o600)
    login = _values(text)
    print(f"wrote {args.out} with new secrets")
    print(
        f"UI and REST API: login {login.get(USERNAME, 'admin')} / {login.get(PASSWORD, '')} "
        f"(shown once; it stays in {args.out.name})"
    )
    return 0


def _values(text: str) -> dict[str, str]:
    pairs = (line.partition("=") for line in text.splitlines() if not line.lstrip().startswith("#"))
    return {name.strip(): value.strip() for name, sep, value in pairs if sep}


if __name__ == "__main__":
    sys.exit(main())
