"""The ``etlml`` command line: the warehouse schema (``etlml db``), the model registry (``etlml models``)
and the pipeline's runs (``etlml runs``) and the event stream (``etlml stream``).

It finds the warehouse the way the DAGs do: the Airflow connection ``warehouse``
(``AIRFLOW_CONN_WAREHOUSE``). Errors print one line saying what to do and exit with status 2.
Each command imports what it uses when it runs, so ``db migrate`` and ``models`` start without
pandas and pyarrow.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from etlml import settings
from etlml.errors import PermanentError, SettingsError
from etlml.features.stats import FeatureStats, parse_stats
from etlml.models import registry
from etlml.warehouse import connection, schema

PIPELINE = "10_etl_ml_pipeline"


class _Parser(argparse.ArgumentParser):
    """A malformed command line is one line too, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"etlml: {message} (see `{self.prog} --help`)\n")


def _migrate(args: argparse.Namespace) -> int:
    from etlml.steps.init_schema import migrate_schema

    applied = migrate_schema()
    message = (
        f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied else "schema is up to date"
    )
    print(message, file=args.out)
    return 0


def _check(args: argparse.Namespace) -> int:
    from etlml.steps.init_schema import check_schema

    print(json.dumps(check_schema().to_xcom()), file=args.out)
    return 0


def _grant_pipeline_role(args: argparse.Namespace) -> int:
    from etlml.warehouse import roles

    if not args.password_stdin:
        raise roles.RoleError("give the role's password on stdin, with --password-stdin (never in argv)")
    password = sys.stdin.readline().rstrip("\r\n")
    with connection.connect(settings.load().warehouse_conn_id) as conn:
        schema.check(conn)  # the grants name the tables the migrations create
        roles.grant_pipeline_role(conn, args.role, password)
    print(f"role {args.role} may read and write what the pipeline needs, and owns nothing", file=args.out)
    return 0


NOT_PROMOTED = 3
"""Exit status of ``etlml models promote VERSION --if-better`` when the evidence does not show VERSION
better (errors exit with 2)."""


def _with_registry(
    action: Callable[[Any, argparse.Namespace], Any],
    status: Callable[[Any], int] = lambda _: 0,
) -> Callable[[argparse.Namespace], int]:
    """Run ``action(conn, args)`` on the warehouse, print its result as a table or JSON, and exit with
    ``status(result)``."""

    def run(args: argparse.Namespace) -> int:
        with connection.connect(settings.load().warehouse_conn_id) as conn:
            schema.check(conn)  # an unmigrated warehouse says what to run, not which table is missing
            result = _finite(action(conn, args))
        if args.json:
            print(json.dumps(result, default=str, indent=2, allow_nan=False), file=args.out)
        else:
            print(_table(result) if isinstance(result, list) else _fields(result), file=args.out)
        return status(result)

    run.strict_json = True  # type: ignore[attr-defined]
    return run


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by ``None``: the ``--json`` output is
    strict JSON (no ``NaN``, ``Infinity``), and the table shows such a figure as empty."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value)
    return "" if value is None else str(value)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(none)"
    headers = list(rows[0])
    cells = [[_cell(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _fields(result: dict[str, Any]) -> str:
    width = max(map(len, result))
    return "\n".join(
        f"{key.ljust(width)}  {json.dumps(v) if isinstance(v, dict) else _cell(v)}"
        for key, v in result.items()
    )


def _stats(conn: Any, args: argparse.Namespace) -> dict[str, FeatureStats]:
    if args.stats:
        try:
            given = json.loads(args.stats)
        except json.JSONDecodeError as exc:
            raise registry.RegistryError(f"--stats is not JSON: {exc}") from exc
        return parse_stats(args.version, given)
    if args.fit_stats_from and args.fit_stats_to:
        return registry.fit_stats(conn, args.fit_stats_from, args.fit_stats_to)
    raise registry.RegistryError(
        "give the normalization statistics: --stats JSON, or --fit-stats-from and --fit-stats-to"
    )


def _register(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "linear":
        if not args.coef:
            raise registry.RegistryError("--kind linear needs --coef f1=...,f2=...,f3=...")
        coef = registry.parse_coefficients(args.coef)
        registry.register_linear(
            conn,
            args.version,
            coef=coef,
            stats=_stats(conn, args),
            actor=settings.actor(),
            intercept=args.intercept,
            description=args.description,
        )
    else:
        if not args.artifact:
            raise registry.RegistryError("--kind sklearn needs --artifact PATH (a skops file)")
        registry.register_sklearn(
            conn,
            args.version,
            artifact_path=args.artifact,
            stats=_stats(conn, args),
            storage_root=settings.load().storage_root,
            actor=settings.actor(),
            description=args.description,
        )
    return registry.show(conn, args.version)


def _label_window(args: argparse.Namespace) -> Any:
    """``--from``/``--to``, each defaulting to the last ``ETLML_LABEL_WINDOW_DAYS`` days up to now."""
    from etlml.models.training import Window

    end = args.end or datetime.now(UTC)
    return Window(args.start or end - settings.load().label_window, end)


def _train(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    from etlml.models import training

    training.train(
        conn,
        args.version,
        estimator=args.estimator,
        window=training.Window(args.start, args.end),
        storage_root=settings.load().storage_root,
        actor=settings.actor(),
        description=args.description,
    )
    return registry.show(conn, args.version)


def _fit_estimator(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    from etlml.models import estimators

    if not args.start < args.end:
        raise SettingsError(f"--from {args.start.isoformat()} must be before --to {args.end.isoformat()}")
    return estimators.fit_for(
        conn,
        args.version,
        (args.start, args.end),
        storage_root=settings.load().storage_root,
        actor=settings.actor(),
    )


def _compare(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    from etlml.models import comparison

    found = comparison.compare(
        conn, args.version, _label_window(args), actor=settings.actor(), samples=args.samples, seed=args.seed
    )
    return found.to_json()


def _promote(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    from etlml.models import comparison

    outcome = comparison.promote(
        conn,
        args.version,
        _label_window(args),
        actor=settings.actor(),
        if_better=args.if_better,
        samples=args.samples,
        seed=args.seed,
    )
    return outcome.to_json()


def _shadow(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    if args.clear == (args.version is not None):
        raise registry.RegistryError("give either VERSION or --clear")
    previous = registry.shadow(conn, None if args.clear else args.version, settings.actor())
    return {"challenger": None if args.clear else args.version, "previous_challenger": previous}


def _rollback(conn: Any, _: argparse.Namespace) -> dict[str, Any]:
    demoted, restored = registry.rollback(conn, settings.actor())
    return {"champion": restored, "demoted": demoted}


def _gaps(conn: Any, args: argparse.Namespace) -> list[dict[str, str]]:
    from etlml.warehouse import runs

    # an interval that has not ended yet cannot have run: it is no gap
    end = min(args.end, datetime.now(UTC))
    return [
        {"interval_start": i.start.isoformat(), "interval_end": i.end.isoformat()}
        for i in runs.gaps(conn, PIPELINE, args.start, end)
    ]


def _changed(conn: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from etlml.ingest.landing import LandingFileSource
    from etlml.warehouse import runs

    landing = LandingFileSource(settings.load().landing_root)

    def now_listed(interval: Any) -> dict[str, int] | None:
        return landing.manifest(interval) if landing.partition_exists(interval) else None

    return [c.to_json() for c in runs.changed(conn, PIPELINE, args.start, args.end, now_listed)]


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date and time, e.g. 2026-11-25T00:00:00+00:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. 2026-11-25T00:00:00+00:00")
    return value


def _stream() -> Any:
    from etlml.ingest import stream

    cfg = settings.load()
    return stream.connect(cfg.stream_conn_id), cfg.stream_key


def _produce(args: argparse.Namespace) -> int:
    from etlml.ingest import stream
    from etlml.ingest.simulator import SimulatedSource
    from etlml.interval import Interval

    client, key = _stream()
    now = datetime.now(UTC)
    events = SimulatedSource(args.seed, args.events).events(Interval(now, now + timedelta(seconds=1)))
    events["event_id"] = [f"evt-{now:%Y%m%dT%H%M%S%f}-{n:07d}" for n in range(len(events))]
    first, last = stream.produce(client, key, events, per_second=args.per_second)
    print(
        json.dumps({"stream": key, "events": len(events), "first_entry_id": first, "last_entry_id": last}),
        file=args.out,
    )
    return 0


def _trim(args: argparse.Namespace) -> int:
    from etlml.ingest import stream

    client, key = _stream()
    before = args.before or datetime.now(UTC) - timedelta(days=args.keep_days)
    removed = stream.trim(client, key, before)
    print(json.dumps({"stream": key, "removed": removed, "before": before.isoformat()}), file=args.out)
    return 0


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value

    return parse


def _stream_commands(commands: Any) -> None:
    stream = commands.add_parser("stream", help="the Redis event stream (ETLML_SOURCE=redis_stream)")
    sub = stream.add_subparsers(dest="stream_command", required=True)
    produce = sub.add_parser("produce", help="append simulated events, ids by the server's clock")
    produce.add_argument("--events", type=_positive(int), required=True, help="how many events")
    produce.add_argument("--per-second", type=_positive(float), help="at most this many a second")
    produce.add_argument("--seed", type=int, default=settings.DEFAULT_SEED, help="of the simulated values")
    produce.set_defaults(func=_produce)
    trim = sub.add_parser("trim", help="remove entries older than the retention (XTRIM MINID)")
    when = trim.add_mutually_exclusive_group(required=True)
    when.add_argument("--keep-days", type=_positive(float), help="keep the entries of the last N days")
    when.add_argument("--before", type=_timestamp, help="remove the entries that arrived before this")
    trim.set_defaults(func=_trim)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="etlml", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    _db_commands(commands)

    models = commands.add_parser("models", help="model registry").add_subparsers(
        dest="models_command", required=True
    )

    def sub(
        name: str, help_text: str, action: Callable[[Any, argparse.Namespace], Any]
    ) -> argparse.ArgumentParser:
        p = models.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=_with_registry(action))
        return p

    sub("list", "all versions and their aliases", lambda conn, _: registry.list_versions(conn))
    sub("show", "one version", lambda conn, a: registry.show(conn, a.version)).add_argument("version")
    sub("events", "the audit trail of registry changes", lambda conn, _: registry.events(conn))
    register = sub("register", "register a new immutable version", _register)
    register.add_argument("version")
    register.add_argument("--kind", choices=["linear", "sklearn"], required=True)
    register.add_argument("--coef", help="linear: f1=0.3,f2=0.2,f3=0.5")
    register.add_argument("--intercept", type=float, default=0.0)
    register.add_argument("--artifact", help="sklearn: an estimator saved with skops.io.dump")
    register.add_argument("--stats", help='JSON {"f1": {"mean": 10, "std": 2}, ...}')
    register.add_argument("--fit-stats-from", type=_timestamp, help="fit statistics on processed_data from")
    register.add_argument("--fit-stats-to", type=_timestamp, help="... to (exclusive)")
    register.add_argument("--description", default="")
    _evidence_commands(models, sub)
    shadow = sub("shadow", "score VERSION in shadow beside the champion", _shadow)
    shadow.add_argument("version", nargs="?")
    shadow.add_argument("--clear", action="store_true", help="stop shadowing")
    sub("rollback", "the previous champion returns", _rollback)

    _runs_commands(commands)
    _stream_commands(commands)
    return parser


Action = Callable[[Any, argparse.Namespace], Any]


def _evidence_commands(models: Any, sub: Callable[[str, str, Action], argparse.ArgumentParser]) -> None:
    """``etlml models train``, ``fit-estimator``, ``compare`` and ``promote`` (which exits with
    :data:`NOT_PROMOTED` when ``--if-better`` finds no evidence)."""
    train = sub(
        "train", "train and register a scikit-learn version on the labelled events of a window", _train
    )
    train.add_argument("version")
    train.add_argument("--estimator", choices=["ridge", "hist_gradient_boosting"], required=True)
    train.add_argument("--from", dest="start", type=_timestamp, required=True, help="first interval start")
    train.add_argument("--to", dest="end", type=_timestamp, required=True, help="window end, exclusive")
    train.add_argument("--description", default="")
    fit_estimator = sub(
        "fit-estimator",
        "fit VERSION's error estimator (estimated MAE before labels) on the labelled events of a window "
        "that it predicted and did not train on",
        _fit_estimator,
    )
    fit_estimator.add_argument("version")
    fit_estimator.add_argument(
        "--from", dest="start", type=_timestamp, required=True, help="first interval start"
    )
    fit_estimator.add_argument(
        "--to", dest="end", type=_timestamp, required=True, help="window end, exclusive"
    )
    compare = sub("compare", "the champion against the challenger (or VERSION) on labelled events", _compare)
    compare.add_argument("version", nargs="?")
    _evidence_options(compare)
    promote = models.add_parser("promote", help="make VERSION the champion, storing the evidence")
    promote.add_argument("version")
    promote.add_argument(
        "--if-better",
        action="store_true",
        help=f"only if the 95%% interval of the MAE difference lies below zero (else exit {NOT_PROMOTED}); "
        "too few resamples or paired labelled events exit 2",
    )
    promote.add_argument("--json", action="store_true", help="machine-readable output")
    _evidence_options(promote)
    promote.set_defaults(
        func=_with_registry(_promote, lambda result: 0 if result["promoted"] else NOT_PROMOTED)
    )


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An option's whole number in ``[low, high]`` (``nan``, ``inf``, ``1e3`` and fractions refused)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} must be from {low} to {high}")
        return value

    return parse


def _evidence_options(command: argparse.ArgumentParser) -> None:
    """The window and bootstrap of a comparison (``models compare`` and ``models promote``)."""
    from etlml.models import evidence

    command.add_argument(
        "--from",
        dest="start",
        type=_timestamp,
        help="first interval start (default: ETLML_LABEL_WINDOW_DAYS ago)",
    )
    command.add_argument("--to", dest="end", type=_timestamp, help="window end, exclusive (default: now)")
    command.add_argument(
        "--samples",
        type=_whole(1, evidence.MAX_SAMPLES),
        default=evidence.DEFAULT_SAMPLES,
        help=f"bootstrap resamples (--if-better needs at least {evidence.MIN_SAMPLES})",
    )
    command.add_argument("--seed", type=_whole(0, evidence.MAX_SEED), default=0, help="of the bootstrap")


def _db_commands(commands: Any) -> None:
    """``etlml db migrate``, ``check`` and ``grant-pipeline-role``."""
    db_commands = commands.add_parser("db", help="warehouse schema").add_subparsers(
        dest="db_command", required=True
    )
    db_commands.add_parser("migrate", help="apply pending migrations").set_defaults(func=_migrate)
    db_commands.add_parser("check", help="verify migrations, tables and champion").set_defaults(func=_check)
    grant = db_commands.add_parser(
        "grant-pipeline-role",
        help="as the owner: create or update the login role the DAGs use; it owns nothing and may only "
        "read and write what the pipeline needs",
    )
    grant.add_argument("role")
    grant.add_argument("--password-stdin", action="store_true", help="read the role's password from stdin")
    grant.set_defaults(func=_grant_pipeline_role)


def _window(action: Callable[[Any, argparse.Namespace], Any]) -> Callable[[Any, argparse.Namespace], Any]:
    """``action`` over the window ``--from`` .. ``--to``, refused unless it is non-empty."""

    def checked(conn: Any, args: argparse.Namespace) -> Any:
        if not args.start < args.end:
            raise SettingsError(f"--from {args.start.isoformat()} must be before --to {args.end.isoformat()}")
        return action(conn, args)

    return checked


def _runs_commands(commands: Any) -> None:
    """``etlml runs gaps`` and ``etlml runs changed``: each over a window, ``--from`` to ``--to``."""
    run_commands = commands.add_parser("runs", help="the pipeline's runs").add_subparsers(
        dest="runs_command", required=True
    )
    helps = {
        "gaps": f"the ended intervals in a window with no {PIPELINE} run that passed its quality gate",
        "changed": "intervals whose landing folder now differs from what their latest run read (late files)",
    }
    for name, action in (("gaps", _gaps), ("changed", _changed)):
        command = run_commands.add_parser(name, help=helps[name])
        command.add_argument("--from", dest="start", type=_timestamp, required=True, help="window start")
        command.add_argument("--to", dest="end", type=_timestamp, required=True, help="window end, exclusive")
        command.add_argument("--json", action="store_true", help="machine-readable output")
        command.set_defaults(func=_with_registry(_window(action)))


def _stdout_handlers(stdout: Any) -> list[logging.StreamHandler[Any]]:
    """Every logging handler that writes to ``stdout`` (Airflow's root handler does)."""
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    handlers = {
        id(h): h
        for lg in loggers
        if isinstance(lg, logging.Logger)
        for h in lg.handlers
        if isinstance(h, logging.StreamHandler) and h.stream is stdout
    }
    return list(handlers.values())


@contextmanager
def _logs_to_stderr() -> Iterator[Any]:
    """While a command runs, every log line goes to stderr (the library's warnings with an ``etlml:``
    prefix, nothing below a warning): stdout holds only the command's output, a table or JSON that
    scripts parse, written to the stream this yields. Airflow sets up logging, with a handler on
    stdout, when first imported, so it is imported first; anything else printed on ``sys.stdout``
    meanwhile (Airflow's secrets masker warns about short passwords) goes to stderr too."""
    import airflow  # noqa: F401

    stdout = sys.stdout
    moved = _stdout_handlers(stdout)
    logger = logging.getLogger("etlml")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("etlml: %(levelname)s %(message)s"))
    logger.handlers[:], logger.level, logger.propagate = [handler], logging.WARNING, False
    for moving in moved:
        moving.setStream(sys.stderr)
    try:
        with redirect_stdout(sys.stderr):
            yield stdout
    finally:
        for moving in moved:
            moving.setStream(stdout)
        logger.handlers[:], logger.level, logger.propagate = saved


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _logs_to_stderr() as args.out:
            return int(args.func(args))
    except (PermanentError, connection.WarehouseUnavailableError) as exc:
        print(f"etlml: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
