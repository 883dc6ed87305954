"""The shape of the code docs/architecture.md describes, checked where a linter cannot:
short functions, typed step signatures. (The import layering is checked by lint-imports in `make lint`.)"""

from __future__ import annotations

import ast
import collections.abc
import importlib
import inspect
import pkgutil
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "etlml"
MAX_FUNCTION_LINES = 50
DAGS = ROOT / "dags"


def dag_imports() -> list[tuple[str, str]]:
    """``(module, name)`` of every name a DAG file imports from ``etlml.steps``: what its tasks call."""
    return sorted(
        {
            (node.module, alias.name)
            for path in sorted(DAGS.glob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("etlml.steps.")
            for alias in node.names
        }
    )


def steps() -> list[tuple[str, str]]:
    """The library functions the DAGs' tasks call, read from the DAG files: a new step is covered as
    soon as a task calls it."""
    return [
        (module, name)
        for module, name in dag_imports()
        if inspect.isfunction(inspect.unwrap(getattr(importlib.import_module(module), name)))
    ]


def asset_extras() -> set[str]:
    """Functions whose result a DAG stores as an asset event's ``extra`` (a JSON object, by Airflow)."""
    return {
        node.value.func.id
        for path in sorted(DAGS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Attribute) and t.attr == "extra" for t in node.targets)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
    }


def context_keys() -> set[str]:
    """The keys of Airflow's task context: a parameter of that name takes Airflow's own value as is."""
    from airflow.sdk import Context

    return set(Context.__annotations__)


def functions(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node.name, int(node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_no_function_in_the_library_is_longer_than_50_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{name} ({lines} lines)"
        for path in sorted(SRC.rglob("*.py"))
        for name, lines in functions(path)
        if lines > MAX_FUNCTION_LINES
    ]
    assert long == [], "split these into named steps: " + ", ".join(long)


CONTAINERS = {
    list, tuple, set, frozenset, Iterable, Sequence, collections.abc.Collection, collections.abc.Iterator,
    typing.Union, types.UnionType,
}  # fmt: skip


def loose(hint: object) -> bool:
    """Whether a type says nothing about what it holds: ``Any``, a dict or mapping, or a union or a
    container (``list[...]``, ``Iterable[...]``, ...) of one."""
    if hint is typing.Any or hint in (dict, Mapping):
        return True
    origin = typing.get_origin(hint)
    if origin in {dict, Mapping}:
        return True
    return origin in CONTAINERS and any(loose(arg) for arg in typing.get_args(hint))


def test_loose_types_are_told_apart() -> None:
    assert loose(dict[str, typing.Any]) and loose(Mapping[str, int] | None) and loose(typing.Any)
    assert loose(Iterable[Mapping[str, typing.Any]]) and loose(list[dict[str, int]])
    assert loose(tuple[dict[str, int], ...]) and loose(Sequence[typing.Any] | None)
    assert not loose(int) and not loose(list[str]) and not loose(str | None) and not loose(tuple[int, ...])


def test_the_steps_are_read_from_the_dags() -> None:
    found = {name for _, name in steps()}
    assert {"extract", "transform", "load_processed", "predict", "store_predictions", "monitor"} <= found
    assert {"maintain_partitions", "ingest_labels", "train", "check_schema"} <= found
    assert {"processed_extra", "predictions_extra", "labels_extra"} <= asset_extras()


@pytest.mark.parametrize(("module", "name"), steps())
def test_steps_take_and_return_typed_payloads_not_dicts(module: str, name: str) -> None:
    func = inspect.unwrap(getattr(importlib.import_module(module), name))
    # the payloads named only for the type checker (under TYPE_CHECKING) live in etlml.steps.run
    hints = typing.get_type_hints(
        func, {**vars(importlib.import_module("etlml.steps.run")), **func.__globals__}
    )
    assert "return" in hints, f"{module}.{name} declares no return type"
    if name in asset_extras():
        hints.pop("return")
    untyped = {param: hint for param, hint in hints.items() if loose(hint) and param not in context_keys()}
    assert untyped == {}, f"{module}.{name} passes run facts untyped: {untyped}"


def step_modules() -> list[str]:
    import etlml.steps

    return sorted(f"etlml.steps.{m.name}" for m in pkgutil.iter_modules(etlml.steps.__path__))


def test_the_independence_contract_covers_every_step_module() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [independent] = [c for c in contracts if c["type"] == "independence"]
    covered = [m for m in step_modules() if any(fnmatchcase(m, e) for e in independent["modules"])]
    assert covered == step_modules()
    assert len(step_modules()) >= 14


def test_each_step_module_is_named_after_its_task() -> None:
    dags = (ROOT / "dags" / "10_etl_ml_pipeline.py").read_text(encoding="utf-8")
    for task in ("extract", "transform", "load_processed", "predict", "store_predictions"):
        assert f"from etlml.steps.{task} import {task}" in dags
        assert (SRC / "steps" / f"{task}.py").exists()


def test_the_local_stack_is_not_in_the_runtime_package() -> None:
    assert not list(SRC.rglob("localstack.py"))
    imported = {
        alias.name.split(".")[0]
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert "httpx" not in imported and "scripts" not in imported
