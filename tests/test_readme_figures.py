"""Every number in README.md's status table is in the results file its row cites.

A row's last cell names its results files (``benchmarks/results/<name>``, in backticks) and,
in double quotes, the lines of those files it quotes: a table row by its first cell (a trailing
``*`` makes it a prefix), another line by how it begins (``#`` and backticks aside). Every number
elsewhere in the row must be in those lines with the same value (the file may format it
otherwise: 1,302 and 1302, 0.30 and 0.3), as many times as the row writes it, so a figure
changed into another figure of the same lines is caught too. Numbers inside backticks and
numbers glued to a word (lsp14, 3D, PCK@0.2) are names, not figures. Only the README and the
committed results are read.
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
STATUS_HEADING = "## Status and measured figures"

# a number not glued to a word, a decimal point or a '@'; thousands may be grouped (1,302)
NUMBER = re.compile(r"(?<![\w.@])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")
CODE = re.compile(r"`[^`]*`")
SOURCE = re.compile(r"`([^`]+\.(?:md|json))`")
LABEL = re.compile(r'"([^"]+)"')


def numbers(text: str) -> list[str]:
    """The numbers of a piece of text, as written, outside code spans."""
    return [whole + (frac or "") for whole, frac in NUMBER.findall(CODE.sub(" ", text))]


def value(number: str) -> Decimal:
    """A number's value, whatever its formatting (1,302 = 1302; 0.30 = 0.3; 47.0 = 47)."""
    return Decimal(number.replace(",", "")).normalize()


def status_lines(readme: str) -> list[tuple[int, str]]:
    """(offset in the README, line) of every data row of the status table."""
    start = readme.index(STATUS_HEADING)
    section = readme[start:].split("\n\n## ")[0]
    rows, offset, seen_rule = [], start, False
    for line in section.splitlines(keepends=True):
        if line.startswith("|---"):
            seen_rule = True
        elif line.startswith("|") and seen_rule:
            rows.append((offset, line.rstrip("\n")))
        offset += len(line)
    return rows


def split_row(line: str) -> tuple[str, list[str], list[str]]:
    """(the row's text without its source cell, the files it cites, the lines it names)."""
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return " | ".join(cells[:-1]), SOURCE.findall(cells[-1]), LABEL.findall(CODE.sub(" ", cells[-1]))


def _named(line: str, label: str) -> bool:
    if line.startswith("|"):
        first = line.strip().strip("|").split("|")[0].strip().replace("`", "")
        return first.startswith(label[:-1]) if label.endswith("*") else first == label
    return line.lstrip("`# ").startswith(label.rstrip("*"))


def quoted_lines(text: str, labels: list[str]) -> list[str]:
    """The lines of a results file that a row names (all of them when it names none)."""
    lines = text.splitlines()
    return lines if not labels else [line for line in lines if any(_named(line, label) for label in labels)]


def unbacked(readme: str, results: Path = RESULTS) -> list[str]:
    """One line for each number of the status table that the lines its row names do not hold
    (as often as the row writes it), for each name that names no line, and for each row citing
    no file or a missing one."""
    problems = []
    for _, line in status_lines(readme):
        text, sources, labels = split_row(line)
        if not sources or any(not (results / s).is_file() for s in sources):
            problems.append(f"row cites no results file or a missing one ({', '.join(sources)}): {text[:60]}")
            continue
        texts = [(results / s).read_text() for s in sources]
        problems += [f'"{label}" names no line of {", ".join(sources)}' for label in labels
                     if not any(quoted_lines(t, [label]) for t in texts)]
        held = Counter(value(n) for t in texts for quoted in quoted_lines(t, labels) for n in numbers(quoted))
        written = Counter(value(n) for n in numbers(text))
        problems += [f"{v} ({n} x) not in the named lines of {', '.join(sources)}: {text[:60]}"
                     for v, n in written.items() if held[v] < n]
    return problems


def test_every_status_figure_is_in_its_results_file():
    readme = README.read_text()
    assert len(status_lines(readme)) >= 15
    assert unbacked(readme) == []


def test_a_changed_figure_is_caught():
    """Each number of the table, changed in its last digit, is reported: the check can fail."""
    readme = README.read_text()
    assert unbacked(readme) == []
    masked = CODE.sub(lambda m: " " * len(m.group(0)), readme)  # same offsets, code spans blanked
    unnoticed, total = [], 0
    for offset, line in status_lines(readme):
        source_cell = line.rstrip().rstrip("|").rindex("|")
        for match in NUMBER.finditer(masked, offset, offset + source_cell):
            text = match.group(0)
            changed = text[:-1] + str((int(text[-1]) + 1) % 10)
            total += 1
            if not unbacked(readme[: match.start()] + changed + readme[match.end() :]):
                unnoticed.append(f"{text} -> {changed} in {line[:50]}")
    assert total >= 100 and unnoticed == []


@pytest.mark.parametrize(("a", "b"), [("1,302", "1302"), ("0.300", "0.3"), ("47.0", "47"), ("8.60", "8.6")])
def test_the_same_value_in_another_format(a, b):
    assert value(a) == value(b)


def test_rounded_repeated_and_unnamed_figures_are_not_backed(tmp_path):
    (tmp_path / "r.md").write_text("# Title (12 runs)\n\n| a | b |\n|---|---|\n| x | 129.2 |\n| y one | 0.587 |\n| y two | 0.588 |\n")
    table = "## Status and measured figures\n\n| what | figure | source |\n|---|---|---|\n| {} | {} | `r.md` {} |\n\n## Next\n"
    assert unbacked(table.format("12 runs", "129.2 s, 0.587 / 0.588", ""), tmp_path) == []
    assert unbacked(table.format("12 runs", "129.2 s, 0.587", '"Title" "x" "y one"'), tmp_path) == []
    assert unbacked(table.format("12 runs", "0.588", '"Title" "x" "y one"'), tmp_path)  # a line not named
    assert unbacked(table.format("a", "0.587", '"y*"'), tmp_path) == []  # a prefix
    assert unbacked(table.format("a", "129 s", ""), tmp_path)  # rounded: not the file's value
    assert unbacked(table.format("a", "0.588 / 0.588", ""), tmp_path)  # held once, written twice
    assert unbacked(table.format("a", "1", '"no such line"'), tmp_path)
    assert unbacked(table.format("a", "`0.5` and lsp14, PCK@0.2", ""), tmp_path) == []  # names, not figures


def test_numbers_skip_names_and_code():
    assert numbers("PCK@0.2 of lsp14, 3D, `--refine-steps 1,8`: 1,302 s and 0.355 / 12") == ["1,302", "0.355", "12"]
