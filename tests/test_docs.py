"""The README and docs/ hold to what they promise: a short front page, an example that runs, commands that exist."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from arbiter.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```(\w*)\s*$")
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Placeholders stand for a value or the rest of a command line; they are not checked.
PLACEHOLDER = re.compile(r"^(\.\.\.|…|[A-Z][A-Z0-9_@.=]*|<[^>]*>)$")


# ------------------------------------------------------------------ the checker


@dataclass(frozen=True)
class Mention:
    """One `arbiter ...` command line written in a page."""

    page: str
    line: int
    text: str
    #: For an alternative written after an `arbiter` command line (`arbiter agents list` / `show NAME`): that line.
    after: str | None = None


def mentions(text: str, page: str) -> Iterator[Mention]:
    """The `arbiter` command lines of a page: shell lines in fenced blocks, and inline code that starts with one."""
    fence: str | None = None
    pending = ""
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line.strip())
        if match:
            fence = None if fence is not None else match.group(1)
            pending = ""
            continue
        if fence is not None:
            if fence in ("python", "json"):
                continue
            command = pending + line.strip()
            if command.endswith("\\"):
                pending = command[:-1] + " "
                continue
            pending = ""
            command = command.removeprefix("$ ")
            if command.startswith("arbiter "):
                yield Mention(page, number, command)
            continue
        previous, end = None, -1
        for match in INLINE.finditer(line):
            code = match.group(1)
            if code.startswith("arbiter ") or code == "arbiter":
                yield Mention(page, number, code)
                previous = code
            elif previous is not None and line[end : match.start()] == " / " and re.match(r"[a-z]", code):
                yield Mention(page, number, code, after=previous)
            else:
                previous = None
            end = match.end()


def _tokens(command: str) -> list[str]:
    command = re.sub(r"\s#\s.*$", "", command)  # a shell comment
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote in an abridged example
        words = command.split()
    return [word.strip("[]") for word in words if word.strip("[]")]


def _option(command: Any, flag: str) -> Any | None:
    for param in command.params:
        if param.param_type_name == "option" and flag in (*param.opts, *param.secondary_opts):
            return param
    return None


def command_line(mention: Mention, root: Any) -> str:
    """The whole command line: an alternative (`show NAME` after `arbiter agents list`) gets its groups."""
    if mention.after is None:
        return mention.text
    groups: list[tuple[str, Any]] = [("arbiter", root)]
    for word in _tokens(mention.after)[1:]:
        inner = getattr(groups[-1][1], "commands", {}).get(word)
        if inner is not None and hasattr(inner, "commands"):
            groups.append((f"{groups[-1][0]} {word}", inner))
    first = _tokens(mention.text)[0]
    prefix = next((path for path, group in reversed(groups) if first in group.commands), groups[-1][0])
    return f"{prefix} {mention.text}"


def problems(mention: Mention, root: Any | None = None) -> list[str]:
    """What in one command line the CLI does not have: an unknown command, or a flag its command does not take."""
    command = root if root is not None else typer.main.get_command(app)
    path = ["arbiter"]
    found: list[str] = []
    value_expected = False
    for word in _tokens(command_line(mention, command))[1:]:
        where = f"{mention.page}:{mention.line}: `{' '.join(path)}`"
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            flag, _, value = word.partition("=")
            option = _option(command, flag)
            if option is None and flag != "--help":
                found.append(f"{where} has no option {flag}")
            value_expected = option is not None and not (option.is_flag or option.count) and not value
            continue
        if value_expected or PLACEHOLDER.match(word):
            value_expected = False
            continue
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            continue  # an argument of a leaf command
        if word not in subcommands:
            found.append(f"{where} has no command {word!r}")
            break
        command = subcommands[word]
        path.append(word)
    return found


def all_mentions() -> list[Mention]:
    return [m for page in PAGES for m in mentions(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))]


def test_every_arbiter_command_and_flag_in_the_docs_exists() -> None:
    found = all_mentions()
    assert len(found) > 40  # the parser finds the pages' command lines
    assert {"publish", "models", "version", "demo", "worker"} <= {w for m in found for w in _tokens(m.text)[1:2]}

    assert [problem for mention in found for problem in problems(mention)] == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("`arbiter run e.json --modle local`", "`arbiter run` has no option --modle"),
        ("```bash\narbiter agents list --stat active   # a comment\n```", "`arbiter agents list` has no option --stat"),
        (
            "```bash\narbiter agents fabricate 'x' \\\n    --exemple '{}'\n```",
            "`arbiter agents fabricate` has no option",
        ),
        ("`arbiter deploy`", "`arbiter` has no command 'deploy'"),
        ("`arbiter agents promote NAME`", "`arbiter agents` has no command 'promote'"),
        ("`arbiter --backend aws --stak arbiter-dev agents list`", "`arbiter` has no option --stak"),
        ("`arbiter agents list` / `show NAME` / `promote NAME`", "`arbiter agents` has no command 'promote'"),
        ("`arbiter agents list` / `show NAME --verbose`", "`arbiter agents show` has no option --verbose"),
    ],
)
def test_the_checker_finds_commands_and_flags_that_do_not_exist(text: str, expected: str) -> None:
    found = [problem for mention in mentions(text, "page.md") for problem in problems(mention)]

    assert found and expected in found[0], found


@pytest.mark.parametrize(
    "text",
    [
        "`arbiter run EVENT_FILE [--model SPEC] [--home DIR] [--json]`",
        "`arbiter --backend aws --stack arbiter-dev agents list`",
        "```bash\narbiter agents add NAME ... --trigger JSON\n```",
        "`arbiter --log-format json ...`",
        "`arbiter worker -c 4 --visibility=30`",
        "`arbiter agents approve NAME@VERSION`",
        "`arbiter agents list` / `show NAME` / `search TEXT --k 3`",
        "`arbiter agents add NAME ... --trigger JSON` / `agents test-trigger NAME NOTE_JSON [--version N]`",
        "`arbiter orchestrations list` / `show ID`, `arbiter report ID`",
    ],
)
def test_the_checker_accepts_what_the_cli_has(text: str) -> None:
    assert [problem for mention in mentions(text, "page.md") for problem in problems(mention)] == []


# ------------------------------------------------------------------ the front page


def test_the_readme_is_a_short_front_page_that_opens_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200

    start = lines.index("```bash")
    block = lines[start + 1 : lines.index("```", start)]
    assert start < 20
    assert [line.split()[:2] for line in block] == [["make", "demo"], ["make", "test"]]


def python_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use it from Python") :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("\n```", start)]


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    source = python_example()
    assert 15 <= len(source.splitlines()) <= 25
    env = {key: value for key, value in os.environ.items() if not key.startswith("ARBITER_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's packages, whichever checkout .venv was made in

    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "completed 21 doubled is 42."
    assert "TaskFinished(" in done.stdout and "output=42" in done.stdout
    assert (tmp_path / ".arbiter" / "arbiter.db").exists()


# ------------------------------------------------------------------ links


def _slug(heading: str) -> str:
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def test_every_relative_link_reaches_a_file_and_its_heading() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_the_docs_map_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for target in LINK.findall(index)}

    assert {page.name for page in DOCS.glob("*.md")} - {"index.md"} <= linked
