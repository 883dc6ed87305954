"""Check the documentation's relative links: every link and image in README.md and docs/*.md that is not a
URL must name a file that exists, and its #anchor, if any, a heading of that page (GitHub's anchors).

    python -m scripts.check_links [ROOT]     # one line per broken link, exit status 1 if there is one
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^ {0,3}(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def pages(root: Path = ROOT) -> list[Path]:
    """The documentation: the README, the front door, and every page under docs/."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def prose(text: str) -> list[str]:
    """The lines of a Markdown text with fenced code blocks blanked (links there are code, not links)."""
    lines, fenced = [], None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fenced is None and fence:
            fenced = fence[1]
        elif fenced is not None and fence and fence[1] == fenced:
            fenced = None
        else:
            lines.append("" if fenced else line)
            continue
        lines.append("")
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation dropped, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.replace("`", "").strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a page: its headings' slugs, repeated ones numbered as GitHub does, and HTML ids."""
    seen: dict[str, int] = {}
    found = set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    for line in prose(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match[2])
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link and image of a page outside code."""
    for number, line in enumerate(prose(path.read_text(encoding="utf-8")), 1):
        for match in LINK.finditer(CODE_SPAN.sub("code", line)):
            yield number, match[1]


def problem(page: Path, target: str) -> str | None:
    """Why a link of ``page`` to ``target`` is broken, or None if it resolves (URLs are not followed)."""
    if URL.match(target):
        return None
    name, _, anchor = target.partition("#")
    file = (page.parent / unquote(name)).resolve() if name else page
    if not file.exists():
        return f"no file {file}"
    if anchor and file.suffix == ".md" and unquote(anchor) not in anchors(file):
        return f"no heading #{anchor} in {file.name}"
    return None


def broken_links(root: Path = ROOT) -> list[str]:
    """One line per broken link of the documentation: where it is, its target and why."""
    broken = []
    for page in pages(root):
        for number, target in links(page):
            why = problem(page, target)
            if why:
                broken.append(f"{page.relative_to(root)}:{number}: broken link ({target}): {why}")
    return broken


def main(argv: list[str]) -> int:
    """Print the broken links of the documentation under ``argv[0]`` (default: this repository)."""
    root = Path(argv[0]).resolve() if argv else ROOT
    broken = broken_links(root)
    for line in broken:
        print(line, file=sys.stderr)
    if broken:
        print(f"check_links: {len(broken)} broken link(s); fix the target or the heading", file=sys.stderr)
        return 1
    print(f"check_links: every relative link of {len(pages(root))} pages resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
