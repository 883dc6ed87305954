"""The `etlml` command line against a real warehouse: tables and JSON out, one-line errors, exit codes."""

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from etlml import cli
from etlml.warehouse import schema
from tests.conftest import scratch_role, url_as

pytestmark = pytest.mark.db

STATS = '{"f1": {"mean": 10, "std": 2}, "f2": {"mean": 0, "std": 1}, "f3": {"mean": 100, "std": 10}}'


def etlml(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_register_shadow_promote_rollback_walkthrough(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    register = ["register", "v2", "--kind", "linear", "--coef", "f1=0.5,f2=0.1,f3=0.4", "--stats", STATS]
    code, out, _ = etlml(capsys, "models", *register, "--json")
    assert code == 0
    assert json.loads(out)["params"] == {"coef": {"f1": 0.5, "f2": 0.1, "f3": 0.4}, "intercept": 0.0}
    assert etlml(capsys, "models", "shadow", "v2")[0] == 0
    code, out, _ = etlml(capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["MODEL_VERSION", "KIND"]
    assert lines[1].split()[0] == "baseline_v1" and lines[1].endswith("champion")
    assert lines[2].split()[0] == "v2" and lines[2].endswith("challenger")
    code, out, _ = etlml(capsys, "models", "promote", "v2", "--json")
    promoted = json.loads(out)
    assert code == 0
    assert (promoted["champion"], promoted["previous_champion"], promoted["promoted"]) == (
        "v2",
        "baseline_v1",
        True,
    )
    assert promoted["reason"].startswith("promoted: no labelled events")
    code, out, _ = etlml(capsys, "models", "rollback", "--json")
    assert json.loads(out) == {"champion": "baseline_v1", "demoted": "v2"}
    code, out, _ = etlml(capsys, "models", "events", "--json")
    assert [e["event"] for e in json.loads(out)] == [
        "register", "promote", "register", "shadow", "promote", "unshadow", "rollback"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "show", "nope"], "not registered"),
        (["models", "promote", "nope"], "not registered"),
        (
            ["models", "register", "v3", "--kind", "linear", "--coef", "f1=x,f2=1,f3=1", "--stats", STATS],
            "not a number",
        ),
        (["models", "register", "v3", "--kind", "linear", "--coef", "f1=1,f2=1,f3=1"], "--stats JSON"),
        (["models", "register", "v3", "--kind", "sklearn", "--stats", STATS], "--artifact"),
        (["models", "rollback"], "no previous champion"),
        (
            [
                "models",
                "register",
                "../escape",
                "--kind",
                "linear",
                "--coef",
                "f1=1,f2=1,f3=1",
                "--stats",
                STATS,
            ],
            "is not a valid name",
        ),
        (
            ["models", "register", "/srv/x", "--kind", "sklearn", "--artifact", "a.skops", "--stats", STATS],
            "valid name",
        ),
        (["models", "shadow"], "either VERSION or --clear"),
    ],
)
def test_errors_say_what_to_do_and_exit_2(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = etlml(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("etlml: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_the_installed_command_finds_the_warehouse_through_the_airflow_connection(
    fresh_migrated: str,
) -> None:
    command = Path(sys.executable).with_name("etlml")
    result = subprocess.run(
        [str(command), "models", "show", "baseline_v1", "--json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["aliases"] == ["champion"]


def test_db_check_prints_only_its_json_on_stdout(fresh_migrated: str) -> None:
    command = Path(sys.executable).with_name("etlml")
    done = subprocess.run([str(command), "db", "check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    shipped = len(schema.available())
    assert json.loads(done.stdout) == {"migrations": shipped, "champion": "baseline_v1"}  # no log line first


def test_a_missing_connection_says_which_variable_to_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_WAREHOUSE")
    command = Path(sys.executable).with_name("etlml")
    done = subprocess.run([str(command), "models", "list"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "set AIRFLOW_CONN_WAREHOUSE=postgresql://USER:PASSWORD@HOST:5432/DATABASE" in done.stderr
    assert "make demo` prints the line" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unmigrated_warehouse_says_to_migrate_in_one_line(fresh_warehouse: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("etlml")), "models", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("etlml: ") and "run `etlml db migrate`" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "register", "v3", "--kind", "linear", "--fit-stats-from", "yesterday"], "ISO-8601"),
        (["models", "register", "v3", "--kind", "tree"], "invalid choice: 'tree'"),
        (["modles", "list"], "invalid choice: 'modles'"),
    ],
)
def test_a_malformed_command_line_is_one_line_with_status_2(args: list[str], message: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("etlml")), *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert done.stderr.startswith("etlml: ") and message in done.stderr
    assert "--help" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_json_output_is_json_only_with_a_short_password(
    fresh_migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's secrets masker warned on stdout about a password under 5 characters, before the JSON."""
    with scratch_role("abcd", in_roles=("pg_read_all_data",)) as role:
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", url_as(role, "abcd", fresh_migrated))
        done = subprocess.run(
            [str(Path(sys.executable).with_name("etlml")), "models", "list", "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert [v["model_version"] for v in json.loads(done.stdout)] == ["baseline_v1"]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Any]:
    """Every leaf command of the parser, as (its words, its parser), asked of argparse itself."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield path, parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from _commands(sub, (*path, name))


def test_every_json_output_goes_through_the_strict_encoder() -> None:
    """Every command with --json (found by walking the parser, so a new one is covered) prints through
    the one printer that encodes with allow_nan=False after replacing non-finite numbers by null."""
    with_json = {
        " ".join(words): sub
        for words, sub in _commands(cli.build_parser())
        if any("--json" in a.option_strings for a in sub._actions)
    }
    assert {"models compare", "models promote", "models list", "runs gaps"} <= set(with_json)
    for name, sub in with_json.items():
        assert getattr(sub.get_default("func"), "strict_json", False), name
    assert cli._finite({"a": [float("inf"), 1.5], "b": float("nan"), "c": "x"}) == {
        "a": [None, 1.5],
        "b": None,
        "c": "x",
    }


@pytest.mark.parametrize(
    "args",
    [
        ["models", "compare", "v2"],
        ["models", "promote", "v2", "--if-better"],
        [
            "models",
            "fit-estimator",
            "baseline_v1",
            "--from",
            "2026-11-01T00:00:00Z",
            "--to",
            "2026-11-02T00:00:00Z",
        ],
    ],
)
def test_an_unreachable_warehouse_is_one_line_and_status_2(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """libpq's message spans lines (its hint): it is printed on one."""
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", "postgresql://nobody@127.0.0.1:1/nowhere")
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("etlml: cannot reach the warehouse") and err.count("\n") == 1


REGISTER_V2 = ["models", "register", "v2", "--kind", "linear", "--coef", "f1=1,f2=1,f3=1", "--stats", STATS]


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [parser, *(p for action in subs for child in action.choices.values() for p in _parsers(child))]


def test_no_help_text_shows_restructuredtext_markup() -> None:
    """--help at every level prints plain text: no ``literal``, :data:`role` or `link`_ markup."""
    texts = []
    for parser in _parsers(cli.build_parser()):
        texts.append(parser.format_help())
        texts += [str(a.help) for a in parser._actions if a.help]
    marked = [t for t in texts if "``" in t or ":data:" in t or ":func:" in t or "`_" in t]
    assert marked == []


def test_times_read_the_same_in_json_and_in_tables(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    etlml(
        capsys, "models", "register", "v2", "--kind", "linear", "--coef", "f1=1,f2=1,f3=1", "--stats", STATS
    )
    _, table, _ = etlml(capsys, "models", "show", "v2")
    _, out, _ = etlml(capsys, "models", "show", "v2", "--json")
    created = json.loads(out)["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", created)  # seconds and offset
    assert f"created_at     {created}" in table or created in table.split()


def test_a_promotion_names_the_new_champion_once(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    etlml(
        capsys, "models", "register", "v2", "--kind", "linear", "--coef", "f1=1,f2=1,f3=1", "--stats", STATS
    )
    etlml(capsys, "models", "shadow", "v2")
    code, out, _ = etlml(capsys, "models", "promote", "v2", "--json")
    promoted = json.loads(out)
    assert code == 0 and "candidate" not in promoted
    assert (promoted["version"], promoted["champion"], promoted["previous_champion"]) == (
        "v2",
        "v2",
        "baseline_v1",
    )
    _, table, _ = etlml(capsys, "models", "promote", "baseline_v1")
    assert [line.split()[1] for line in table.splitlines() if line.split()[0] == "champion"] == [
        "baseline_v1"
    ]


def test_compare_before_labels_does_not_ask_to_shadow_a_version_already_shadowing(
    fresh_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.labelled_events import interval, load_intervals, score

    with psycopg.connect(fresh_migrated) as conn:  # labelled events the champion alone scored
        load_intervals(conn, 0, 1, events=20)
    score("baseline_v1", 0, 1)
    etlml(
        capsys, "models", "register", "v2", "--kind", "linear", "--coef", "f1=1,f2=1,f3=1", "--stats", STATS
    )
    etlml(capsys, "models", "shadow", "v2")
    window = ["--from", interval(0).start.isoformat(), "--to", interval(1).start.isoformat()]
    code, _, err = etlml(capsys, "models", "compare", *window)
    assert code == 2
    assert "'v2' is already shadowing" in err and "shadow it" not in err
