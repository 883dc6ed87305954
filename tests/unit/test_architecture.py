"""The shape of the code the README's Architecture section describes, checked where a linter cannot:
short functions, typed step signatures. (The import layering is checked by lint-imports in `make lint`.)"""

from __future__ import annotations

import ast
import importlib
import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "etlml"
MAX_FUNCTION_LINES = 50
STEPS = {
    "etlml.steps.extract": "extract",
    "etlml.steps.transform": "transform",
    "etlml.steps.load_processed": "load_processed",
    "etlml.steps.predict": "predict",
    "etlml.steps.store_predictions": "store_predictions",
    "etlml.steps.rescore": "rescore",
    "etlml.steps.init_schema": "check_schema",
}


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


def loose(hint: object) -> bool:
    """Whether a type says nothing about what it holds: ``Any``, a dict or mapping, or a union with one."""
    if hint is typing.Any:
        return True
    origin = typing.get_origin(hint)
    if origin in {dict, Mapping, typing.Union, types.UnionType}:
        return origin in {dict, Mapping} or any(loose(arg) for arg in typing.get_args(hint))
    return hint in {dict, Mapping}


def test_loose_types_are_told_apart() -> None:
    assert loose(dict[str, typing.Any]) and loose(Mapping[str, int] | None) and loose(typing.Any)
    assert not loose(int) and not loose(list[str]) and not loose(str | None)


@pytest.mark.parametrize(("module", "name"), sorted(STEPS.items()))
def test_steps_take_and_return_typed_payloads_not_dicts(module: str, name: str) -> None:
    func = inspect.unwrap(getattr(importlib.import_module(module), name))
    hints = typing.get_type_hints(func)
    assert "return" in hints, f"{module}.{name} declares no return type"
    untyped = {param: hint for param, hint in hints.items() if loose(hint)}
    assert untyped == {}, f"{module}.{name} passes run facts untyped: {untyped}"


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
