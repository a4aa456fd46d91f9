"""The Space in a real browser: Debian's Chromium driven by Python Playwright.

Uploads generated images through the page's file input, picks the identity, presses Score,
waits for the result and checks the mAP shown equals what ``fp_rank.evaluate`` gives for the
same files, and that the ranked strips are on the page. The screenshot is kept as a test
artifact in ``artifacts/app_screenshot.png``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.app_fixtures import expected_report, make_space, pick, png_header_only, running_app, save_records

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def test_page_uploads_scores_and_shows_rankings(tmp_path: Path, demo_gallery_dir: Path, demo_generated: list[dict]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    identity, name = "finch_scarlet_crown", "Scarlet-crown finch"
    good = save_records(pick(demo_generated, identity, "faithful", 6), tmp_path / "batch")
    bad = tmp_path / "batch" / "huge_header.png"
    bad.write_bytes(png_header_only(20_000, 20_000))
    expected = expected_report(good, identity, demo_gallery_dir)

    with running_app(make_space(demo_gallery_dir, tmp_path / "work")) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#fp-files input[type=file]").set_input_files([str(p) for p in [*good, bad]])
            # the upload is done when the file list shows the last file (name and suffix are split)
            page.locator("#fp-files").get_by_text(bad.stem).first.wait_for(timeout=30_000)

            box = page.locator("#fp-identity input")
            box.click()
            box.fill("Scarlet-crown")
            page.get_by_role("option", name=f"{name} ({identity})").click()

            page.locator("#fp-score").click()
            headline = page.locator("#fp-results .fp-map .fp-value")
            headline.wait_for(state="visible", timeout=60_000)

            assert headline.inner_text().strip() == f"{expected.map:.3f}"
            for card, value in (("fp-cmc", expected.cmc[1]), ("fp-pairwise", expected.pairwise_similarity), ("fp-chance", expected.chance_map)):
                shown = page.locator(f"#fp-results .{card} .fp-value")
                assert shown.is_visible() and shown.inner_text().strip() == f"{value:.3f}"
            status = page.locator("#fp-status")
            assert "huge_header.png" in status.inner_text() and "megapixels" in status.inner_text()

            strips = page.locator("#fp-strips img")
            strips.first.wait_for(state="visible", timeout=30_000)
            assert strips.count() >= len(good)
            assert strips.first.evaluate("img => img.complete && img.naturalWidth > 400")

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "app_screenshot.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            shutil.copy(shot, tmp_path / "app_screenshot.png")
        finally:
            browser.close()
