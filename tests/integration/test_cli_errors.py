"""Every ``etlml`` command, found by walking the parser's subcommands (never a list kept by hand),
answers bad input and unreachable services with one line on stderr, ``etlml: ...``, and a non-zero
exit status, never a traceback.

Bad values are generic: every numeric option (its parser declares its bounds) is given NaN,
infinities, huge values and values just outside its bounds; every time option a malformed time, one
without a UTC offset and one out of range; every option with choices a value that is none of them.
A command with none of these declares its bad command lines in :data:`BAD_INPUT`; a new command
with neither fails :func:`test_every_command_has_a_bad_value`. The bad values are refused by the
parser before anything connects, so they run in this process (argparse's exit caught), with the
services unreachable all the same: a value not refused would reach the closed port, and its line
would not name the option. The unreachable services (PostgreSQL via ``AIRFLOW_CONN_WAREHOUSE``,
Redis via ``AIRFLOW_CONN_EVENTS``, both on closed local ports) are met by each command in a process
of its own, the way an operator runs it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from etlml import cli

Path = tuple[str, ...]
WINDOW_START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

BAD_INPUT: dict[Path, list[list[str]]] = {
    ("db", "migrate"): [["surplus"]],
    ("db", "check"): [["surplus"]],
    ("db", "grant-pipeline-role"): [["etlml_pipeline"]],  # no --password-stdin: the password is not in argv
    ("models", "list"): [["surplus"]],
    ("models", "show"): [["v1", "surplus"]],
    ("models", "events"): [["surplus"]],
    ("models", "shadow"): [["v1", "v2"]],
    ("models", "rollback"): [["surplus"]],
}
"""Bad command lines of the commands that have no option the walk can give a bad value."""


def leaves(
    parser: argparse.ArgumentParser, path: Path = ()
) -> Iterator[tuple[Path, argparse.ArgumentParser]]:
    """Every command that runs something, with its path (``("stream", "produce")``)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups:
        yield path, parser
        return
    for name, child in groups[0].choices.items():
        yield from leaves(child, (*path, name))


COMMANDS = dict(leaves(cli.build_parser()))


def _name(action: argparse.Action) -> str:
    """How argparse names the option in its errors."""
    return "/".join(action.option_strings) or str(action.metavar or action.dest)


def _kind(action: argparse.Action) -> str | None:
    """``number``, ``time`` or ``choice`` for an option the walk can give bad values, else ``None``."""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "choice"
    if action.type is None or not callable(action.type):
        return None
    try:
        sample = action.type("1")
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        sample = None
    if isinstance(sample, int | float):
        return "number"
    try:
        action.type(WINDOW_START.isoformat())
    except (argparse.ArgumentTypeError, ValueError, TypeError):
        return None
    return "time"


def _bad_values(action: argparse.Action) -> list[str]:
    kind = _kind(action)
    if kind == "choice":
        return ["no-such-choice"]
    if kind == "time":
        return ["2026-13-01T00:00:00+00:00", "2026-11-22T09:00:00", "0001-01-01T00:00:00+01:00"]
    if kind == "number":
        huge = ["nan", "NaN", "inf", "-inf", "1e300", "-1e300", "1e309"]
        bounds = getattr(action.type, "bounds", None)  # what cli._number declares
        if bounds is None:
            return huge
        low, high = bounds
        beyond = [low - 1, high + 1] if isinstance(low, int) else [low - max(1.0, abs(low)), high * 2]
        return [*huge, *map(str, beyond)]
    return []


def _valid_argv(
    path: Path, parser: argparse.ArgumentParser, leave_out: argparse.Action | None = None
) -> list[str]:
    """The command with a valid value for each required argument (times increasing in the order the
    options are declared, so every window is non-empty), and every flag."""
    argv = list(path)
    excluded = set()
    for group in parser._mutually_exclusive_groups:
        members = group._group_actions
        if leave_out in members:
            excluded |= set(members)
        elif group.required:
            excluded |= set(members[1:])  # the group is satisfied by its first member
    times = 0
    for action in parser._actions:
        if action is leave_out or action in excluded or isinstance(action, argparse._HelpAction):
            continue
        required = action.required or (not action.option_strings and action.nargs is None)
        in_required_group = any(
            g.required and action in g._group_actions for g in parser._mutually_exclusive_groups
        )
        if isinstance(action, argparse._StoreTrueAction):
            if not any(action in g._group_actions for g in parser._mutually_exclusive_groups):
                argv.append(action.option_strings[0])
            continue
        if not (required or in_required_group):
            continue
        kind = _kind(action)
        if kind == "choice":
            value = str(next(iter(action.choices or [])))
        elif kind == "time":
            value = (WINDOW_START + timedelta(hours=times)).isoformat()
            times += 1
        elif kind == "number":
            value = str(getattr(action.type, "bounds", (1,))[0])
        else:
            value = "v1"
        argv += [*action.option_strings[:1], value]
    return argv


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is: nothing listens there


@pytest.fixture(scope="module")
def ports() -> tuple[int, int]:
    return _closed_port(), _closed_port()


def _unreachable_env(ports: tuple[int, int]) -> dict[str, str]:
    pg, redis = ports
    return {
        "AIRFLOW_CONN_WAREHOUSE": f"postgresql://postgres@127.0.0.1:{pg}/etlml",
        "AIRFLOW_CONN_WAREHOUSE_REGISTRY": f"postgresql://postgres@127.0.0.1:{pg}/etlml",
        "AIRFLOW_CONN_EVENTS": f"redis://127.0.0.1:{redis}/0",
        "ETLML_STREAM_CONN_ID": "events",
        "ETLML_WAREHOUSE_CONN_ID": "warehouse",
        "ETLML_REGISTRY_CONN_ID": "warehouse_registry",
    }


def _one_line(status: int, err: str) -> str:
    assert status != 0, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("etlml: "), err
    return lines[0]


def test_the_walk_finds_every_command() -> None:
    assert {("stream", "produce"), ("stream", "trim"), ("runs", "gaps"), ("db", "migrate")} <= set(COMMANDS)
    assert len(COMMANDS) >= 16


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_has_a_bad_value(path: Path) -> None:
    generic = [a for a in COMMANDS[path]._actions if _bad_values(a)]
    assert generic or path in BAD_INPUT, (
        f"`etlml {' '.join(path)}` has no option the walk can give a bad value: declare its bad command "
        "lines in BAD_INPUT"
    )


def _run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse refuses a malformed command line this way
        status = exit_.code if isinstance(exit_.code, int) else 1
    return status, capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_bad_values_are_one_line(
    path: Path, ports: tuple[int, int], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _unreachable_env(ports).items():
        monkeypatch.setenv(name, value)
    parser = COMMANDS[path]
    for action in parser._actions:
        for bad in _bad_values(action):
            argv = [*_valid_argv(path, parser, leave_out=action), *action.option_strings[:1], bad]
            line = _one_line(*_run_in_process(argv, capsys))
            assert f"argument {_name(action)}" in line, (argv, line)  # refused as input, before connecting
    for tail in BAD_INPUT.get(path, []):
        _one_line(*_run_in_process([*path, *tail], capsys))


def test_every_command_names_the_unreachable_service(ports: tuple[int, int]) -> None:
    env = {**os.environ, **_unreachable_env(ports)}
    names = {f"127.0.0.1:{port}" for port in ports}

    def run(path: Path) -> tuple[list[str], int, str]:
        argv = _valid_argv(path, COMMANDS[path])
        done = subprocess.run(
            [sys.executable, "-m", "etlml.cli", *argv],
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return argv, done.returncode, done.stderr

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        results = list(pool.map(run, sorted(COMMANDS)))
    for argv, status, err in results:
        line = _one_line(status, err)
        assert status == 2 and any(name in line for name in names), (argv, line)
