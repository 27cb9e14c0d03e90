"""The leaderboard page in a real headless browser (Debian's chromium through Playwright), opened from file://
with the network off: every row is there, a column sorts, the plots are drawn; a screenshot is saved.

CI installs chromium (.ci/run); a missing browser fails this test, it is never skipped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evaluator.leaderboard.site import build_site

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
def page(tmp_path_factory, eval_submissions):
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium; "
        ".ci/run does it) or point IN9_CHROMIUM at a Chromium binary"
    )
    from playwright.sync_api import sync_playwright

    site = tmp_path_factory.mktemp("site")
    build_site(eval_submissions.root, site, registry_path=eval_submissions.registry, allow_unpinned=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        requests: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto((site / "index.html").as_uri())
        yield tab, requests, errors
        browser.close()


def _column(tab, table: str, key: str) -> list[str]:
    return tab.eval_on_selector_all(
        f"table.{table} tbody tr",
        f"""rows => rows.map(r => r.cells[[...r.closest('table').tHead.rows[0].cells]
                .findIndex(h => h.dataset.key === '{key}')].innerText.replace('reported', '').trim())""",
    )


@pytest.mark.slow
def test_page_sorts_draws_and_needs_no_network(page, eval_submissions):
    tab, requests, errors = page
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
    models = {key: str(folder) for key, folder in eval_submissions.folders.items()}
    shown = _column(tab, "reproduced", "model")
    assert sorted(shown) == sorted(
        json.loads((Path(f) / "results.json").read_text())["model"]["id"] for f in models.values()
    )
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

    # the plots are drawn: one point per row with both numbers, one bar per challenge result
    assert tab.locator("#scatter circle.pt.reproduced").count() == 2 + 1  # + the legend marker
    assert tab.locator("#scatter rect.pt.reported").count() == 17 + 1
    assert tab.locator("#challenge rect.bar.reproduced").count() == 2
    assert tab.locator("#challenge rect.bar.reported").count() == 4
    box = tab.locator("#scatter").bounding_box()
    assert box["width"] > 600 and box["height"] > 300

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "leaderboard.png"
    tab.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
