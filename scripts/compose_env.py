"""Write `.env` for docker compose from `.env.example`, generating every secret left empty there.

    python3 scripts/compose_env.py            # refuses to overwrite an existing .env

Standard library only, so it runs before anything is installed. The admin/admin login it copies
from .env.example is for local use only: change _AIRFLOW_WWW_USER_PASSWORD before exposing the UI.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def secret_for(name: str) -> str:
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
    args.out.write_text(render(args.example.read_text()))
    args.out.chmod(0o600)
    print(f"wrote {args.out} with new secrets; login admin/admin is for local use only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
