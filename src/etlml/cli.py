"""The ``etlml`` command line: the warehouse schema (``etlml db``), the model registry (``etlml models``)
and the pipeline's runs (``etlml runs``) and the event stream (``etlml stream``).

It finds the warehouse the way the DAGs do: the Airflow connection ``warehouse``
(``AIRFLOW_CONN_WAREHOUSE``). Every error prints one line on stderr, never a traceback: bad input
and unreachable services (named with their host and port) say what to do and exit with status 2,
anything unforeseen exits with 1 (``etlml --debug`` shows its traceback). Numeric options refuse
NaN, infinities and values outside their range; a window of ``etlml runs`` spans at most 31 days.
Each command imports what it uses when it runs: Airflow only where a command needs it (not to
resolve a ``postgres://`` URI in ``AIRFLOW_CONN_WAREHOUSE``), pandas, pyarrow and scikit-learn only
where a command computes with them, so most commands answer in about a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from etlml import settings
from etlml.errors import PermanentError, SettingsError

PIPELINE = "10_etl_ml_pipeline"
LABELS = "15_ingest_labels"
INGEST_DAGS = (PIPELINE, LABELS)
"""The DAGs that read a source and record what they read (``etlml runs changed`` and ``status``)."""


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
    from etlml.warehouse import connection, schema

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
        from etlml.warehouse import connection, schema

        with connection.connect(settings.load().warehouse_conn_id) as conn:
            schema.check(conn)  # an unmigrated warehouse says what to run, not which table is missing
            result = _finite(action(conn, args))
        if args.json:
            print(json.dumps(result, default=_json_value, indent=2, allow_nan=False), file=args.out)
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


def timestamp_text(value: datetime) -> str:
    """How every command shows a time, in tables and in ``--json`` alike: ISO 8601 to the second, with
    its UTC offset (``2026-12-07T13:51:55+00:00``)."""
    return value.isoformat(timespec="seconds")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp_text(value)
    return str(value)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return timestamp_text(value)
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


def _stats(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    from etlml.features.stats import parse_stats
    from etlml.models import registry

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
    from etlml.models import registry

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
    from etlml.models.window import Window

    end = args.end or datetime.now(UTC).replace(microsecond=0)
    return Window(args.start or end - settings.load().label_window, end)


def _train(conn: Any, args: argparse.Namespace) -> dict[str, Any]:
    from etlml.models import registry, training
    from etlml.models.window import Window

    training.train(
        conn,
        args.version,
        estimator=args.estimator,
        window=Window(args.start, args.end),
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
    from etlml.models import registry

    if args.clear == (args.version is not None):
        raise registry.RegistryError("give either VERSION or --clear")
    previous = registry.shadow(conn, None if args.clear else args.version, settings.actor())
    return {"challenger": None if args.clear else args.version, "previous_challenger": previous}


def _rollback(conn: Any, _: argparse.Namespace) -> dict[str, Any]:
    from etlml.models import registry

    demoted, restored = registry.rollback(conn, settings.actor())
    return {"champion": restored, "demoted": demoted}


def _gaps(conn: Any, args: argparse.Namespace) -> list[dict[str, str]]:
    from etlml.warehouse import runs

    # an interval before ETLML_START_DATE is not the pipeline's (the scheduler never runs it), and one
    # that has not ended yet cannot have run: neither is a gap
    start = max(args.start, settings.start_date())
    end = min(args.end, datetime.now(UTC))
    return [
        {"interval_start": i.start.isoformat(), "interval_end": i.end.isoformat()}
        for i in runs.gaps(conn, PIPELINE, start, end)
    ]


def _changed(conn: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from etlml.warehouse import runs

    return [c.to_json() for c in runs.changed(conn, INGEST_DAGS, args.start, args.end, _now_read())]


def _status(conn: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``etlml runs status``: the ledger of the window, one row per interval from ETLML_START_DATE on."""
    from etlml.interval import on_grid
    from etlml.warehouse import runs

    start = max(on_grid(args.start), on_grid(settings.start_date(), up=True))
    if start >= args.end:
        return []
    rows = runs.status(conn, PIPELINE, start, args.end, datetime.now(UTC))
    if not args.skip_sources:
        changed = {c.interval.start for c in runs.changed(conn, (PIPELINE,), start, args.end, _now_read())}
        rows = [replace(r, changed=r.interval_start in changed) for r in rows]
    if args.json:
        return [r.to_json() for r in rows]
    return [
        {
            "interval": r.interval_start.strftime("%Y-%m-%d %H:%M"),
            "source": r.source or "",
            "extracted": r.extracted,
            "loaded": r.loaded,
            "rejected": r.rejected,
            "dedup": r.deduplicated,
            "gate": r.gate or "",
            "versions": r.model_versions or [],
            "labelled": "" if r.label_coverage is None else f"{r.label_coverage:.0%}",
            "monitored": "" if r.monitored_at is None else r.monitored_at.strftime("%H:%M"),
            "etlml": r.etlml_version or "",
            "flags": r.flags,
        }
        for r in rows
    ]


def _now_read() -> Any:
    """What each source holds now of an interval a run read (``runs.NowRead``): the event and label
    landing folders, local or on object storage, and the event stream; sources are opened once, when
    an interval first needs them."""
    from functools import cache

    cfg = settings.load()

    # the sources' modules (pandas, object storage) are imported once an interval needs them
    @cache
    def landing(dag_id: str) -> Any:
        from etlml.ingest import formats
        from etlml.ingest.landing import LABELS_FOLDER, LandingFileSource

        if dag_id == PIPELINE:
            return LandingFileSource(cfg.landing_root)
        return LandingFileSource(cfg.landing_root, fields=formats.LABELS, prefix=LABELS_FOLDER)

    @cache
    def stream() -> Any:
        from etlml.ingest.stream import RedisStreamSource

        return RedisStreamSource.from_connection(cfg.stream_conn_id, cfg.stream_key, cfg.stream_grace)

    def now_read(dag_id: str, source: str, interval: Any, read: Any) -> Any:
        from etlml.ingest import ledger

        if read.stream is not None:
            entries = stream().entries_now(interval)
            return None if entries is None else ledger.Ledger(entries.entries, stream=entries)
        files = landing(dag_id)
        if read.files is None or not files.partition_exists(interval):
            return None
        return ledger.Ledger(0, files=files.ledger_files(interval, known=read.files))

    return now_read


EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
"""The times a command line may name: no event of the pipeline predates the Unix epoch, and a year
short of ``datetime.max`` leaves room for the arithmetic of windows and retention."""


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 date and time, e.g. 2026-11-25T00:00:00+00:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. 2026-11-25T00:00:00+00:00")
    try:
        in_range = EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        in_range = False
    if not in_range:
        raise argparse.ArgumentTypeError(
            f"{text!r} is out of range: give a time from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} UTC"
        )
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
    """Trim to the retention asked for, but never past an interval the pipeline has not stored
    (unless ``--force``): the same bound as ``90_housekeeping``'s."""
    from etlml.ingest import stream
    from etlml.warehouse import runs

    client, key = _stream()
    asked = args.before or datetime.now(UTC) - timedelta(days=args.keep_days)
    before, why = asked, "--force: trimmed as asked, whatever the pipeline has stored"
    if not args.force:
        from etlml.warehouse import connection

        with connection.connect(settings.load().warehouse_conn_id) as conn:
            point = runs.trim_point(conn, PIPELINE, settings.start_date(), asked)
        before, why = point.before, point.why
        if before < asked:
            logging.getLogger("etlml").warning("%s (--force trims them anyway)", why)
    removed = stream.trim(client, key, before)
    print(
        json.dumps({"stream": key, "removed": removed, "before": before.isoformat(), "kept": why}),
        file=args.out,
    )
    return 0


def _number(kind: type[int] | type[float], low: float, high: float, said: str = "") -> Callable[[str], float]:
    """The parser of a numeric option: a finite ``kind`` from ``low`` to ``high`` (``said`` says so in
    its error, by default "from LOW to HIGH"). NaN compares false with everything and infinities pass
    a one-sided check, so both are refused by name. The bounds are kept on the parser (``bounds``)
    for the command-line tests."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            whole = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {whole}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is out of range: must be {said or f'from {_shown(low)} to {_shown(high)}'}"
            )
        return value

    parse.bounds = (low, high)  # type: ignore[attr-defined]
    return parse


def _shown(bound: float) -> str:
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _positive(kind: type[int] | type[float], high: float = 1e9) -> Callable[[str], float]:
    """A numeric option above 0 (at least 1 for a whole number), at most ``high``."""
    low = 1 if kind is int else math.ulp(0.0)
    return _number(kind, low, high, f"more than 0 and at most {_shown(high)}")


SEED = _number(int, 0, 2**32 - 1)
"""A seed of numpy's generators (which refuse negative ones)."""


def _stream_commands(commands: Any) -> None:
    stream = commands.add_parser("stream", help="the Redis event stream (ETLML_SOURCE=redis_stream)")
    sub = stream.add_subparsers(dest="stream_command", required=True)
    produce = sub.add_parser("produce", help="append simulated events, ids by the server's clock")
    produce.add_argument(
        "--events",
        type=_positive(int, 10_000_000),
        required=True,
        help="how many events (at most 10,000,000)",
    )
    produce.add_argument(
        "--per-second",
        type=_number(float, 0.01, 1_000_000),
        help="at most this many a second (0.01 to 1,000,000)",
    )
    produce.add_argument("--seed", type=SEED, default=settings.DEFAULT_SEED, help="of the simulated values")
    produce.set_defaults(func=_produce)
    trim = sub.add_parser(
        "trim",
        help="remove entries older than the retention (XTRIM MINID), never past an interval not yet stored",
    )
    when = trim.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--keep-days",
        type=_positive(float, 10_000),
        help="keep the entries of the last N days (at most 10,000)",
    )
    when.add_argument("--before", type=_timestamp, help="remove the entries that arrived before this")
    trim.add_argument(
        "--force",
        action="store_true",
        help="trim as asked even past intervals the pipeline has not stored yet (their entries are lost)",
    )
    trim.set_defaults(func=_trim)


DESCRIPTION = """\
The warehouse schema (etlml db), the model registry (etlml models), the pipeline's runs (etlml runs)
and the event stream (etlml stream).

The warehouse is the Airflow connection 'warehouse', as for the DAGs: set AIRFLOW_CONN_WAREHOUSE=
postgresql://USER:PASSWORD@HOST:5432/DATABASE (in the demo: source .demo/env). Errors print one line:
exit 2 for bad input or a service that does not answer, 1 for anything unforeseen (--debug shows its
traceback). Times are ISO 8601 with a UTC offset, e.g. 2026-11-25T00:00:00+00:00.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="etlml", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--debug", action="store_true", help="on an unexpected error, show its traceback")
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

    sub("list", "all versions and their aliases", _registry("list_versions"))
    sub("show", "one version", _registry("show", "version")).add_argument("version")
    sub("events", "the audit trail of registry changes", _registry("events"))
    register = sub("register", "register a new immutable version", _register)
    register.add_argument("version")
    register.add_argument("--kind", choices=["linear", "sklearn"], required=True)
    register.add_argument("--coef", help="linear: f1=0.3,f2=0.2,f3=0.5")
    register.add_argument(
        "--intercept",
        type=_number(float, -1e12, 1e12),
        default=0.0,
        help="linear: at most 1e12 either side of 0",
    )
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


def commands(parser: argparse.ArgumentParser | None = None) -> list[tuple[str, ...]]:
    """Every command of the tree, e.g. ``("models", "list")``, read from the parser itself (a new
    command is included by default)."""
    found: list[tuple[str, ...]] = []

    def walk(node: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        subs = [a for a in node._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append(path)
        for action in subs:
            for name, child in action.choices.items():
                walk(child, (*path, name))

    walk(parser or build_parser(), ())
    return found


Action = Callable[[Any, argparse.Namespace], Any]


def _registry(function: str, *arguments: str) -> Action:
    """An action that calls ``etlml.models.registry.<function>(conn, args.<argument>...)``, the
    registry imported when the command runs."""

    def action(conn: Any, args: argparse.Namespace) -> Any:
        from etlml.models import registry

        return getattr(registry, function)(conn, *(getattr(args, a) for a in arguments))

    return action


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


MAX_WINDOW = timedelta(days=31)
"""The longest window ``etlml runs`` reports on at once: 4,464 intervals, a month of them (longer ones
are asked for in parts, so a mistyped year costs nothing)."""


def _window(action: Callable[[Any, argparse.Namespace], Any]) -> Callable[[Any, argparse.Namespace], Any]:
    """``action`` over the window ``--from`` .. ``--to``, refused unless it is non-empty and at most
    :data:`MAX_WINDOW` long, before anything is read or listed."""

    def checked(conn: Any, args: argparse.Namespace) -> Any:
        if not args.start < args.end:
            raise SettingsError(f"--from {args.start.isoformat()} must be before --to {args.end.isoformat()}")
        if args.end - args.start > MAX_WINDOW:
            raise SettingsError(
                f"--from {args.start.isoformat()} --to {args.end.isoformat()} is too long: a window spans at "
                f"most {MAX_WINDOW.days} days ({MAX_WINDOW // timedelta(minutes=10):,} intervals); "
                "ask for a longer one in parts"
            )
        return action(conn, args)

    return checked


def _runs_commands(commands: Any) -> None:
    """``etlml runs gaps``, ``changed`` and ``status``: each over a window, ``--from`` to ``--to``."""
    run_commands = commands.add_parser("runs", help="the pipeline's runs").add_subparsers(
        dest="runs_command", required=True
    )
    helps = {
        "gaps": f"the ended intervals in a window with no {PIPELINE} run that passed its quality gate",
        "changed": "intervals whose source (landing folder, label folder, stream) now differs from "
        "what their latest run read: late or changed files, late entries",
        "status": f"where each interval of {PIPELINE} stands: accounting, gate, versions scored, label "
        "coverage, last monitored, the code that stored it, and flags (gap, changed, smaller source)",
    }
    for name, action in (("gaps", _gaps), ("changed", _changed), ("status", _status)):
        command = run_commands.add_parser(name, help=helps[name])
        command.add_argument("--from", dest="start", type=_timestamp, required=True, help="window start")
        command.add_argument(
            "--to",
            dest="end",
            type=_timestamp,
            required=True,
            help=f"window end, exclusive; at most {MAX_WINDOW.days} days after --from",
        )
        command.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "status":
            command.add_argument(
                "--skip-sources",
                action="store_true",
                help="do not read the sources (no 'changed' flag): the warehouse alone",
            )
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
    scripts parse, written to the stream this yields. Airflow is imported only by the commands that
    need it: its logging, set up when first imported, then binds its stdout handler to stderr (the
    ``sys.stdout`` of that moment); handlers an earlier import bound to stdout are moved to stderr
    meanwhile, and anything else printed on ``sys.stdout`` (Airflow's secrets masker warns about short
    passwords) goes to stderr too."""

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


UNEXPECTED = 1
"""Exit status of an error the command did not foresee (a defect: ``etlml --debug`` shows where);
what the operator can fix (bad input, settings, a service that does not answer) exits with 2."""


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _unreachable(exc: BaseException) -> str | None:
    """What to say of a server that does not answer, naming it, or ``None`` for any other error."""
    redis = sys.modules.get("redis")  # not imported: the error is none of its
    if redis is not None and isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        # redis-py's message names the host and port: "Error 111 connecting to 127.0.0.1:6379. ..."
        return (
            f"cannot reach Redis: {exc}; check that it is running and that the stream's Airflow "
            "connection (ETLML_STREAM_CONN_ID) names its host and port"
        )
    connection = sys.modules.get("etlml.warehouse.connection")
    if connection is not None and isinstance(exc, connection.WarehouseUnavailableError):
        return str(exc)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return (
            f"lost the connection to the warehouse: {exc}; check that PostgreSQL is running, then run again"
        )
    return None


def _explained(exc: Exception) -> tuple[str, int]:
    """The one line an error prints, and the exit status."""
    said = _unreachable(exc)
    if said is not None:
        return _one_line(said), 2
    if isinstance(exc, PermanentError):
        return _one_line(str(exc)), 2
    return _one_line(f"unexpected {type(exc).__name__}: {exc}; `etlml --debug ...` shows where"), UNEXPECTED


def main(argv: list[str] | None = None) -> int:
    """Run one command. Whatever goes wrong prints one line, ``etlml: ...``, on stderr, never a
    traceback, and exits non-zero: 2 for bad input and unreachable services (named with host and
    port), :data:`UNEXPECTED` otherwise, 130 on Ctrl-C. Every command, present and future, runs here."""
    args = build_parser().parse_args(argv)
    try:
        with _logs_to_stderr() as args.out:
            return int(args.func(args))
    except KeyboardInterrupt:
        print("etlml: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message, status = _explained(exc)
        print(f"etlml: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
