"""The machine yardstick's reference figure is one figure, in one place: bench/yardstick.py,
which docs/performance.md quotes."""

from __future__ import annotations

import re
from pathlib import Path

from bench import yardstick

ROOT = Path(__file__).resolve().parents[2]


def _figures(text: str) -> set[str]:
    """Every "600–650 requests/s"-like figure of a text, dashes made one."""
    return {re.sub(r"[–—-]", "-", found) for found in re.findall(r"(\d[\d,]*\s*[–—-]\s*\d[\d,]*) requests/s", text)}


def test_the_docs_quote_the_reference_figure_of_the_code():
    docs = (ROOT / "docs" / "performance.md").read_text()
    reference = yardstick.REFERENCE_HELLO_REQUESTS_PER_S

    # the docs name where the figure lives, and every range of requests/s they give is it
    assert "REFERENCE_HELLO_REQUESTS_PER_S" in docs
    assert _figures(docs) == {reference}


def test_the_code_states_the_reference_figure_once():
    source = (ROOT / "bench" / "yardstick.py").read_text()
    low, high = yardstick.REFERENCE_HELLO_REQUESTS_PER_S.split("-")
    assert len(re.findall(rf"{low}\s*[–—-]\s*{high}", source)) == 1
