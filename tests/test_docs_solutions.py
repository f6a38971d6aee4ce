"""Each chapter's exercises have solutions in docs/solutions/, and every solution runs and checks itself.

A chapter's "## Exercises" section is a numbered list; docs/solutions/NN_*.py (NN the chapter's number)
has one function `exercise_N` per item, which computes the answer with the project's code and asserts
it. Here every function runs (in a fresh folder, plugins it registers forgotten afterwards).
"""
import glob
import os
import re
import runpy

import pytest

from helpers import restored_registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOLUTIONS = os.path.join(ROOT, "docs", "solutions")
CHAPTERS = ["01-autograd.md", "02-bptt-vanishing.md", "03-cells.md", "04-plugins.md", "09-deep-and-bidirectional.md"]


def exercises_of(chapter):
    """The numbered items of the chapter's '## Exercises' section."""
    text = open(os.path.join(ROOT, "docs", chapter), encoding="utf-8").read()
    section = re.search(r"^## Exercises\n(.*?)(?=^## |^Next: |\Z)", text, re.S | re.M)
    assert section, f"docs/{chapter} has no '## Exercises' section"
    return re.findall(r"^(\d+)\. ", section.group(1), re.M)


def solution_file(chapter):
    found = glob.glob(os.path.join(SOLUTIONS, chapter[:2] + "_*.py"))
    assert len(found) == 1, f"docs/{chapter}: expected one docs/solutions/{chapter[:2]}_*.py, found {found}"
    return found[0]


def load(path):
    with restored_registry():
        return runpy.run_path(path, run_name="solutions")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_has_3_to_6_exercises_and_a_solution_for_each(chapter):
    numbers = exercises_of(chapter)
    assert 3 <= len(numbers) <= 6 and numbers == [str(i) for i in range(1, len(numbers) + 1)]
    names = sorted(n for n in load(solution_file(chapter)) if re.fullmatch(r"exercise_\d+", n))
    assert names == sorted(f"exercise_{n}" for n in numbers), f"{chapter}: {names} for exercises {numbers}"
    text = open(os.path.join(ROOT, "docs", chapter), encoding="utf-8").read()
    assert f"(solutions/{os.path.basename(solution_file(chapter))})" in text, f"{chapter} does not link its solutions"


def solutions():
    for chapter in CHAPTERS:
        for number in exercises_of(chapter):
            yield chapter, int(number)


@pytest.mark.parametrize("chapter, number", list(solutions()))
def test_the_solution_runs_and_its_checks_hold(chapter, number, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with restored_registry():
        namespace = runpy.run_path(solution_file(chapter), run_name="solutions")
        namespace[f"exercise_{number}"]()
