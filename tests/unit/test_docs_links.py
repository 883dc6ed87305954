"""The documentation's links: every relative link of the README and docs/ resolves (``make lint`` runs the
same check through ``python -m scripts.check_links``), and the check fails on a link that does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts.check_links import anchors, broken_links, slug
from tests.conftest import ROOT
from tests.helpers import doc_section


def test_every_relative_link_of_the_documentation_resolves() -> None:
    assert broken_links(ROOT) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def test_a_missing_page_a_missing_heading_and_a_missing_image_are_each_reported(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "README.md": "# Front\n\nSee [ops](docs/ops.md#retention), [gone](docs/gone.md) and "
            "[here](#front).\n",
            "docs/ops.md": "# Ops\n\n## Retention\n\n## Retention\n\n[twice](#retention-1), "
            "[back](../README.md#nowhere), ![chart](chart.png), [site](https://example.com/x.md#y)\n",
        },
    )
    assert broken_links(tmp_path) == [
        f"README.md:3: broken link (docs/gone.md): no file {tmp_path / 'docs' / 'gone.md'}",
        "docs/ops.md:7: broken link (../README.md#nowhere): no heading #nowhere in README.md",
        f"docs/ops.md:7: broken link (chart.png): no file {tmp_path / 'docs' / 'chart.png'}",
    ]


def test_links_in_code_are_not_links(tmp_path: Path) -> None:
    _write(tmp_path, {"README.md": "# A\n\n```\n[x](missing.md)\n```\n\n`[y](missing.md)`\n"})
    assert broken_links(tmp_path) == []


def test_the_command_exits_non_zero_and_names_the_broken_link(tmp_path: Path) -> None:
    _write(tmp_path, {"README.md": "# A\n\n[x](docs/x.md#b)\n", "docs/x.md": "# X\n"})
    done = subprocess.run(
        [sys.executable, "-m", "scripts.check_links", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "README.md:3: broken link (docs/x.md#b): no heading #b in x.md" in done.stderr


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Ground truth (labels)", "ground-truth-labels"),
        ("Train, shadow, compare, promote", "train-shadow-compare-promote"),
        ("Growth: does it slow? (`make bench GROWTH=30`)", "growth-does-it-slow-make-bench-growth30"),
        ("The `etlml_pipeline` role", "the-etlml_pipeline-role"),
    ],
)
def test_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_headings_in_code_blocks_are_no_anchors(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n```bash\n# not a heading\n```\n", encoding="utf-8")
    assert anchors(tmp_path / "a.md") == {"a"}


def test_a_documented_section_is_found_in_the_page_that_holds_it() -> None:
    section = doc_section("Landing files and quarantine")
    assert "```sql" in section
    assert "## Event stream" not in section
