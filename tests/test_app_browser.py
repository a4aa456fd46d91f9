"""The Space in a real browser: Debian's Chromium driven by Python Playwright.

Uploads generated images through the page's file input (one of them a copy of a real gallery
photo), picks the identity, presses Score, waits for the result and checks the mAP shown equals
what ``fp_rank.evaluate`` gives for the same files, that the ranked strips are on the page, that
the copy is flagged, and that nothing overflows at desktop and phone width. The screenshots are
kept as test artifacts in ``artifacts/app_screenshot.png`` (1400 px wide) and
``artifacts/app_screenshot_phone.png`` (390 px wide).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.app_fixtures import expected_report, make_space, pick, png_header_only, running_app, save_records

DESKTOP, PHONE = 1400, 390

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
    good.append(copy_of_a_gallery_image(demo_gallery_dir, identity, tmp_path / "batch" / "copied_from_gallery.png"))
    bad = tmp_path / "batch" / "huge_header.png"
    bad.write_bytes(png_header_only(20_000, 20_000))
    expected = expected_report(good, identity, demo_gallery_dir)
    assert [q["file"] for q in expected.queries if q["leak"] is not None] == ["copied_from_gallery.png"]

    with running_app(make_space(demo_gallery_dir, tmp_path / "work")) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": DESKTOP, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#fp-score").wait_for(state="visible", timeout=30_000)
            # nothing to download before a result: the download buttons are not on the page
            assert not page.locator("#fp-json").is_visible() and not page.locator("#fp-csv").is_visible()
            _assert_drop_zone_not_clipped(page)
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

            # the copy of a gallery photo is flagged on its method's cards, its strip and its table row
            banner = page.locator("#fp-results .fp-leak")
            assert banner.count() == 1 and "1 of 7 image(s) flagged as copies of real images" in banner.inner_text()
            assert page.locator("#fp-strips .fp-strip-leak").count() == 1
            assert page.locator("#fp-table").get_by_text("⚠ copied_from_gallery.png", exact=False).count() >= 1
            for button in ("#fp-json", "#fp-csv"):
                assert page.locator(button).is_visible() and page.locator(button).is_enabled()
            # the header names the encoder by its allow-list label
            assert "generated · fp-rank-demo · 7 image(s) scored" in page.locator("#fp-results").inner_text()

            ARTIFACTS.mkdir(exist_ok=True)
            for width, name in ((DESKTOP, "app_screenshot.png"), (PHONE, "app_screenshot_phone.png")):
                page.set_viewport_size({"width": width, "height": 1000 if width == DESKTOP else 844})
                page.wait_for_timeout(500)  # let the layout settle at the new width
                assert _page_overflow(page) == [], f"content wider than the {width} px viewport"
                _assert_drop_zone_not_clipped(page)
                shot = ARTIFACTS / name
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                shutil.copy(shot, tmp_path / name)
        finally:
            browser.close()


def copy_of_a_gallery_image(gallery_dir: Path, identity: str, out: Path) -> Path:
    """Write the first gallery photo of ``identity`` as an upload: a leak the page must flag."""
    import fp_rank

    split = fp_rank.load_gallery(str(gallery_dir)).gallery
    index = next(i for i, ident in enumerate(split.identities) if ident == identity)
    item = split.images[index]
    out.write_bytes(item["bytes"] if isinstance(item, dict) and item.get("bytes") else Path(item["path"]).read_bytes())
    return out


def _page_overflow(page) -> list[str]:
    """Result elements wider than the viewport (a horizontally scrolling table inside its own box is fine)."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const out = [];
            for (const sel of ['#fp-results', '.fp-card', '.fp-strip', '#fp-strips', '#fp-table', '#fp-status',
                               '#fp-files', '#fp-mapping', '#fp-score']) {
                for (const el of document.querySelectorAll(sel)) {
                    const box = el.getBoundingClientRect();
                    if (box.width > 0 && (box.right > width + 1 || box.left < -1)) out.push(sel);
                }
            }
            if (document.documentElement.scrollWidth > width + 1) out.push('page scrolls sideways');
            return out;
        }"""
    )


def _assert_drop_zone_not_clipped(page) -> None:
    """The mapping CSV's drop zone shows its whole prompt (icon and text) inside its box."""
    clipped = page.evaluate(
        """() => {
            const zone = document.querySelector('#fp-mapping');
            const box = zone.getBoundingClientRect();
            const out = [];
            const outside = (r) => r.height > 0 && (r.top < box.top - 1 || r.bottom > box.bottom + 1);
            for (const icon of zone.querySelectorAll('svg')) {
                if (outside(icon.getBoundingClientRect())) out.push('icon');
            }
            const walker = document.createTreeWalker(zone, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                if (!node.textContent.trim()) continue;
                const range = document.createRange();
                range.selectNodeContents(node);
                if (outside(range.getBoundingClientRect())) out.push(node.textContent.trim());
            }
            return out;
        }"""
    )
    assert clipped == [], f"the mapping drop zone clips {clipped}"
