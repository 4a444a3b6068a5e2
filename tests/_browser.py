"""A real headless Chromium for the page tests: Debian's ``chromium`` and
``chromium-driver`` (installed by .ci/run), driven by selenium from PyPI through
/usr/bin/chromedriver. Nothing is downloaded: selenium is given the driver and the browser
binary, so its driver manager never runs.

Without the browser the tests are skipped, unless INVREQ_REQUIRE_BROWSER=1 (set by .ci/run),
which turns the skip into a failure.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Where screenshots for the docs go when INVREQ_UPDATE_SCREENSHOTS=1.
DOCS_IMG = Path(__file__).parent.parent / "docs" / "img"
#: A phone's viewport (CSS pixels).
PHONE = (412, 1000)


def _require_browser() -> None:
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    if os.environ.get("INVREQ_REQUIRE_BROWSER") == "1":
        pytest.fail("chromium and chromium-driver are required (INVREQ_REQUIRE_BROWSER=1)")
    pytest.skip("chromium/chromium-driver not installed (INVREQ_REQUIRE_BROWSER=1 fails instead)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """``browser(javascript=True)``: a new headless Chromium (closed after the test)."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def start(*, javascript: bool = True, size: tuple[int, int] = PHONE) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",  # tests run as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={tmp_path / f'chrome{len(drivers)}'}",
        ):
            options.add_argument(arg)
        if not javascript:
            options.add_experimental_option(
                "prefs", {"profile.managed_default_content_settings.javascript": 2}
            )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        driver.set_window_size(*size)
        drivers.append(driver)
        return driver

    yield start
    for d in drivers:
        d.quit()


def read_qr(png: bytes) -> list[str]:
    """The texts of the QR codes in a PNG screenshot (zxing-cpp)."""
    import zxingcpp
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image)]


def keep_screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    """Save a screenshot of the page; copied to docs/img/ for the README when
    INVREQ_UPDATE_SCREENSHOTS=1."""
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get("INVREQ_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)
    return path


__all__ = ["PHONE", "browser", "keep_screenshot", "read_qr"]
