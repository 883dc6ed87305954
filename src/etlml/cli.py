"""The ``etlml`` command line: ``etlml db migrate``, ``etlml db check``."""

from __future__ import annotations

import argparse
import json
import sys

from etlml import db, migrations, model, pipeline


def _migrate(_: argparse.Namespace) -> int:
    applied = pipeline.migrate_schema()
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def _check(_: argparse.Namespace) -> int:
    print(json.dumps(pipeline.check_schema()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etlml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    db_parser = commands.add_parser("db", help="warehouse schema")
    db_commands = db_parser.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("migrate", help="apply pending migrations").set_defaults(func=_migrate)
    db_commands.add_parser("check", help="verify migrations, tables and champion").set_defaults(func=_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (db.WarehouseUnavailableError, migrations.MigrationError, model.ModelError) as exc:
        print(f"etlml: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
