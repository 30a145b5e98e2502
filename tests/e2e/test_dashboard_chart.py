"""The dashboard's orders-per-minute chart keeps its time labels apart, at desktop size and on
a phone: the labels are drawn on a canvas, so the test measures what uPlot drew (each tick's
position and its label's width in the axis font)."""

from __future__ import annotations

from typing import cast

import pytest
from playwright.sync_api import Page, expect

from ordering.models import StaffMembership
from tests.e2e.conftest import log_in, screenshot
from tests.factories import StaffMembershipFactory

# For each pair of neighbouring time labels: the room between their centres, and the room their
# half-widths need, in CSS pixels.
LABEL_ROOM = """() => {
  const chart = window.passlineDashboard.chart;
  const axis = chart.axes[0];
  const ctx = chart.ctx;
  ctx.save();
  ctx.font = axis.font[0];
  const ticks = axis._splits.map((value, i) => ({
    x: chart.valToPos(value, "x"),
    width: ctx.measureText(String(axis._values[i])).width / devicePixelRatio,
    label: String(axis._values[i]),
  })).filter((tick) => tick.x >= 0 && tick.x <= chart.bbox.width / devicePixelRatio);
  ctx.restore();
  return ticks;
}"""


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_charts_time_labels_do_not_overlap(
    e2e_db, live_url: str, request: pytest.FixtureRequest, restaurant, password, size
) -> None:
    page = cast(Page, request.getfixturevalue("page" if size == "desktop" else "phone_page"))
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    log_in(page, live_url, cook.username, password, f"/dashboard/{restaurant.pk}/")
    expect(page.locator("#dash-chart canvas")).to_be_visible()
    ticks = page.evaluate(LABEL_ROOM)
    assert len(ticks) >= 2, ticks
    for left, right in zip(ticks, ticks[1:], strict=False):
        gap = right["x"] - left["x"]
        assert gap >= (left["width"] + right["width"]) / 2 + 8, (left, right, ticks)
    screenshot(page, f"dashboard-chart-{size}")
