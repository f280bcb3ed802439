"""Benchmarks rewrite their RESULTS.md on every run and carry the hand-written notes over
(shared.testing.kept_notes): a run must never drop what earlier sessions wrote down."""
from pathlib import Path

import pytest

from shared.testing import NOTES_BEGIN, NOTES_END, kept_notes

REPO = Path(__file__).resolve().parents[2]


def test_the_notes_are_carried_over_and_nothing_else(tmp_path):
    results = tmp_path / "RESULTS.md"
    notes = f"{NOTES_BEGIN}\n## What a change bought\n\n| a | b |\n{NOTES_END}"
    results.write_text(f"# Old tables\n\n| x |\n\n{notes}\n\ntrailing text\n")
    assert kept_notes(results) == f"\n{notes}\n"
    # A new run's file: its tables, then the same notes, again carried over whole.
    results.write_text("# New tables\n" + kept_notes(results))
    assert kept_notes(results) == f"\n{notes}\n"


@pytest.mark.parametrize("text", ["no markers at all", f"{NOTES_END} before {NOTES_BEGIN}", f"{NOTES_BEGIN} only"])
def test_no_notes_without_both_markers_in_order(tmp_path, text):
    results = tmp_path / "RESULTS.md"
    results.write_text(text)
    assert kept_notes(results) == ""
    assert kept_notes(tmp_path / "missing.md") == ""


@pytest.mark.parametrize("path", ["deploy/bench/RESULTS.md", "shared/bench/RESULTS.md",
                                  "ticket-service/bench/RESULTS.md"])
def test_the_benchmarks_that_keep_notes_have_them_marked(path):
    text = (REPO / path).read_text()
    assert text.count(NOTES_BEGIN) == 1 and text.count(NOTES_END) == 1
    assert len(kept_notes(REPO / path)) > 200
