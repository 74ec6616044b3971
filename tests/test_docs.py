"""The docs hold together: every relative link and image in README.md and docs/ resolves, and the README stays short."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_MAX_LINES = 300
DOCS = [README, *sorted((REPO / "docs").rglob("*.md"))]

FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"!?\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose_lines(text: str):
    """(line number, line) for each line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lowercase, punctuation but - and _ dropped, spaces to -."""
    text = LINK.sub(lambda m: m.group(1), heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    """'line N: target (why)' for each relative link or image in a markdown file that does not resolve."""
    broken = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("code", line)):
            target = match.group(2)
            if EXTERNAL.match(target):
                continue
            file_part, _, anchor = unquote(target).partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"line {number}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"line {number}: {target} (no heading #{anchor} in {resolved.name})")
    return broken


def test_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    first_block = README.read_text(encoding="utf-8").split("```")[1]
    assert 'pip install -e ".[test]" && python -m pytest' in first_block  # the test command .ci/run runs


def test_every_page_is_checked():
    names = {str(p.relative_to(REPO)) for p in DOCS}
    assert {"README.md", "docs/running.md", "docs/design.md", "docs/measurements/backends.md"} <= names


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    assert broken_links(page) == []


def test_slug_follows_github():
    assert slug("Per backend: what `prepare_s` and `first_inference_ms` include") == (
        "per-backend-what-prepare_s-and-first_inference_ms-include")
    assert slug("A team's tracking server") == "a-teams-tracking-server"
    assert slug("Serving scenarios (MLPerf LoadGen)") == "serving-scenarios-mlperf-loadgen"
    assert slug("See [the farm](farm.md)") == "see-the-farm"


def test_checker_finds_broken_links(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "fig.png").write_bytes(b"png")
    (tmp_path / "other.md").write_text("# Other page\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        "[ok](other.md) [ok](other.md#other-page) [ok](other.md#twice-1) [ok](#page) ![ok](img/fig.png)\n"
        "[web](https://example.org/none.md) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
        "[bad file](missing.md)\n"
        "[bad anchor](other.md#nowhere)\n"
        "[bad local anchor](#nowhere)\n"
        "![bad image](img/none.png)\n"
        "[third twice](other.md#twice-2)\n")
    assert broken_links(page) == [
        "line 8: missing.md (no such file)",
        "line 9: other.md#nowhere (no heading #nowhere in other.md)",
        "line 10: #nowhere (no heading #nowhere in page.md)",
        "line 11: img/none.png (no such file)",
        "line 12: other.md#twice-2 (no heading #twice-2 in other.md)",
    ]
