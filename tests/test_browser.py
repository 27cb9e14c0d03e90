"""The leaderboard page in a real headless browser (Debian's chromium through Playwright), opened from file://
with the network off: every row is there, a column sorts, the plots are drawn; a screenshot is saved.

CI installs chromium (.ci/run); a missing browser fails this test, it is never skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evaluator.leaderboard.site import build_site
from hub_cards import leaderboard_page, published_rows
from tests.fixtures_leaderboard import long_names, page_rows, seeds_block

CHROMIUM = Path(os.environ.get("IN9_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; "
        ".ci/run does it) or point IN9_CHROMIUM at a Chromium binary"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()


def _open(browser, html: Path, width: int = 1280, height: int = 900):
    """A tab on ``html`` with the network off; returns (tab, requested urls, page errors)."""
    context = browser.new_context(offline=True, viewport={"width": width, "height": height})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(html.as_uri())
    return tab, requests, errors


@pytest.fixture(scope="module")
def site(tmp_path_factory, eval_submissions) -> Path:
    """The page of the real fixture submissions."""
    out = tmp_path_factory.mktemp("site")
    build_site(eval_submissions.root, out, registry_path=eval_submissions.registry, allow_unpinned=True)
    return out / "index.html"


@pytest.fixture(scope="module")
def long_site(tmp_path_factory, eval_submissions) -> Path:
    """A page whose rows have a long Hub id and revision, and seed statistics (two more columns)."""
    rows = page_rows(
        eval_submissions.folders,
        {
            "in1k": long_names,
            "in9": lambda doc: doc["metrics"].update(seeds=seeds_block((0.6034, 0.0211), (0.0978, 0.0154))),
        },
    )
    out = tmp_path_factory.mktemp("long-site") / "index.html"
    out.write_text(leaderboard_page.render_html(rows, published_rows()), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def page(browser, site):
    tab, requests, errors = _open(browser, site)
    yield tab, requests, errors
    tab.context.close()


def _column(tab, table: str, key: str) -> list[str]:
    return tab.eval_on_selector_all(
        f"table.{table} tbody tr",
        f"""rows => rows.map(r => r.cells[[...r.closest('table').tHead.rows[0].cells]
                .findIndex(h => h.dataset.key === '{key}')].firstChild?.textContent.trim() ?? '')""",
    )


@pytest.mark.slow
def test_page_sorts_draws_and_needs_no_network(page, eval_submissions):
    tab, requests, errors = page
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
    folders = eval_submissions.folders.values()
    ids = [json.loads((f / "results.json").read_text())["model"]["id"] for f in folders]
    # local models by their folder's name, the path in the tooltip; the row keeps the full id
    assert sorted(_column(tab, "reproduced", "model")) == sorted(Path(i).name for i in ids)
    rows = tab.eval_on_selector_all(
        "table.reproduced tbody tr", "rows => rows.map(r => [r.dataset.model, r.cells[0].title])"
    )
    assert sorted(rows) == sorted([i, f"local folder {i}"] for i in ids)
    assert len(_column(tab, "reported", "model")) == 17

    # sort the reproduced table by Original: numbers sort descending first, a second click ascending
    original = _column(tab, "reproduced", "original")
    tab.click("table.reproduced th[data-key=original] button")
    assert _column(tab, "reproduced", "original") == sorted(original, key=float, reverse=True)
    assert tab.get_attribute("table.reproduced th[data-key=original]", "aria-sort") == "descending"
    tab.click("table.reproduced th[data-key=original] button")
    assert _column(tab, "reproduced", "original") == sorted(original, key=float)
    assert tab.get_attribute("table.reproduced th[data-key=original]", "aria-sort") == "ascending"

    # the reported table by BG-gap: the published gaps in descending order
    tab.click("table.reported th[data-key=bg_gap] button")
    gaps = [float(x) for x in _column(tab, "reported", "bg_gap")]
    assert gaps == sorted(gaps, reverse=True) and gaps[0] == 22.0 and gaps[-1] == 0.2
    # text columns sort ascending first, empty cells last
    tab.click("table.reported th[data-key=challenge_accuracy] button")
    challenge = _column(tab, "reported", "challenge_accuracy")
    assert challenge[:4] == ["22.3", "20.02", "12.0", "3.78"] and set(challenge[4:]) == {"–"}

    # the plots are drawn: one point per row with both numbers, one bar per challenge result; one scatter
    # per data edition (the published rows on the release's)
    panels = tab.locator("svg.scatter")
    assert panels.count() == 2
    synthetic, release = "[data-edition='synthetic seeded seed=0']", "[data-edition='release official']"
    assert tab.locator(f"svg.scatter{synthetic} circle.pt.reproduced").count() == 2
    assert tab.locator(f"svg.scatter{release} rect.pt.reported").count() == 17
    assert tab.locator("svg.scatter .pt").count() == 2 + 17  # no other point anywhere
    assert tab.locator("#challenge rect.bar.reproduced").count() == 2
    assert tab.locator("#challenge rect.bar.reported").count() == 4
    for i in range(2):
        box = panels.nth(i).bounding_box()
        assert box["width"] > 500 and box["height"] > 300

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "leaderboard.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def _layout(tab) -> dict:
    """What overflows: the page, each table (its right edge; its box's scroll), the Label-mode headers."""
    return tab.evaluate(
        """() => {
        const view = document.documentElement.clientWidth;
        const heads = [...document.querySelectorAll('th[data-key=label_mode]')].map(th => {
            th.scrollIntoView({block: 'center', inline: 'nearest'});
            const r = th.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            return {left: r.left, right: r.right, visible: th.contains(hit)};
        });
        window.scrollTo(0, 0);
        return {
            view, page: document.documentElement.scrollWidth,
            tables: [...document.querySelectorAll('table')].map(t => ({
                right: t.getBoundingClientRect().right,
                box: [t.parentElement.scrollWidth, t.parentElement.clientWidth],
            })),
            heads,
        };
    }"""
    )


@pytest.mark.slow
@pytest.mark.parametrize("which", ["site", "long_site"])
def test_tables_fit_a_1400_px_window_and_scroll_in_their_box_when_narrower(browser, request, which):
    html = request.getfixturevalue(which)
    tab, _, errors = _open(browser, html, 1400, 900)
    layout = _layout(tab)
    assert errors == [] and layout["page"] <= layout["view"] == 1400, layout
    assert len(layout["tables"]) == 2 and len(layout["heads"]) == 2
    for table in layout["tables"]:
        assert table["right"] <= layout["view"], layout  # the whole table is in the window ...
        assert table["box"][0] <= table["box"][1], layout  # ... and nothing in it is scrolled out of sight
    for head in layout["heads"]:
        assert head["visible"] and 0 <= head["left"] and head["right"] <= layout["view"], layout
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"leaderboard-{which}-1400.png"), full_page=True)
    tab.context.close()

    # narrower, a table may scroll inside its own box, never the page
    tab, _, errors = _open(browser, html, 800, 900)
    layout = _layout(tab)
    assert errors == [] and layout["page"] <= layout["view"] == 800, layout
    tab.context.close()
