"""The operator dashboard in a real browser (headless Chromium from Debian, driven by
selenium): log in with a rune, filter requests, open one with its payouts, disable it; and
why it cannot be driven from another site (the rune travels in a header, never a cookie).
Payments go through tests/fake_lightningd.py, which STANDS IN FOR lightningd."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _browser import keep_screenshot
from _lightningd import invoice_for, wait_until
from _service_fixtures import Server
from invreq.web.headers import CSP
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

WIDE = (1200, 1100)


def rows(driver: Any, table: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"))


def log_in(driver: Any, url: str, rune: str) -> None:
    driver.get(url)
    wait_until(lambda: driver.find_element(By.ID, "login").is_displayed())
    driver.find_element(By.ID, "rune").send_keys(rune)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()


def test_log_in_filter_open_and_disable(tmp_path: Path, browser: Any, lightningd: Any) -> None:
    ln = lightningd()
    s = Server(tmp_path / "data", extra_args=["--pay-with", f"cln:{ln.socket}"]).start()
    try:
        made = [
            s.rpc.call(
                "invoicerequest",
                {
                    "amount": 1000 * (i + 1),
                    "description": f"payout <{i}>",
                    "label": f"team-{i % 2}",
                },
            )
            for i in range(4)
        ]
        assert s.rpc.call("receiveinvoice", [invoice_for(made[0]["bolt12"])])["status"] == "paid"
        rune = s.rpc.call("createrune", {})["rune"]
        url = f"http://127.0.0.1:{s.http_port}/dashboard"

        driver = browser(size=WIDE)
        # A wrong rune is refused, and nothing is shown.
        log_in(driver, url, "Zm9v")
        wait_until(lambda: driver.find_element(By.ID, "error").text)
        assert not driver.find_element(By.ID, "app").is_displayed()

        log_in(driver, url, rune)
        wait_until(lambda: len(rows(driver, "requests")) == 4, what="four requests listed")
        wait_until(lambda: len(rows(driver, "payments")) == 1, what="one payment listed")
        assert "paid" in rows(driver, "payments")[0].text
        # The rune stays in this tab's storage: no cookie at all.
        assert driver.get_cookies() == []
        assert driver.execute_script("return sessionStorage.getItem('invreq-rune')") == rune

        # Filters: by label, then by state.
        driver.find_element(By.ID, "f-label").send_keys("team-1")
        driver.find_element(By.CSS_SELECTOR, "#filters button").click()
        wait_until(lambda: len(rows(driver, "requests")) == 2, what="label filter")
        driver.find_element(By.ID, "f-label").clear()
        Select(driver.find_element(By.ID, "f-state")).select_by_value("used")
        driver.find_element(By.CSS_SELECTOR, "#filters button").click()
        wait_until(lambda: len(rows(driver, "requests")) == 1, what="state filter")
        assert rows(driver, "requests")[0].get_attribute("data-invreq-id") == made[0]["invreq_id"]

        # The used request's detail: its payout, with its status.
        rows(driver, "requests")[0].click()
        wait_until(lambda: len(rows(driver, "d-payments")) == 1, what="payouts of the request")
        assert "paid" in rows(driver, "d-payments")[0].text
        assert "payout <0>" in driver.find_element(By.ID, "d-fields").text  # as text
        assert not driver.find_element(By.ID, "d-disable").is_displayed()  # inactive
        wait_until(lambda: len(rows(driver, "d-events")) == 3, what="events of the request")
        keep_screenshot(driver, tmp_path, "dashboard.png")

        # Disable an active one.
        Select(driver.find_element(By.ID, "f-state")).select_by_value("active")
        driver.find_element(By.CSS_SELECTOR, "#filters button").click()
        wait_until(lambda: len(rows(driver, "requests")) == 3, what="active requests")
        target = made[2]["invreq_id"]
        next(
            r for r in rows(driver, "requests") if r.get_attribute("data-invreq-id") == target
        ).click()
        wait_until(lambda: driver.find_element(By.ID, "d-id").text == target)
        driver.find_element(By.ID, "d-disable").click()
        driver.switch_to.alert.accept()
        wait_until(
            lambda: driver.find_element(By.ID, "detail").get_attribute("data-state") == "disabled",
            what="detail shows disabled",
        )
        listed = s.rpc.call("listinvoicerequests", [target])["invoicerequests"][0]
        assert listed["active"] is False
        wait_until(lambda: len(rows(driver, "requests")) == 2, what="no longer listed as active")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert all("401" in e["message"] for e in errors), errors  # only the wrong rune's
    finally:
        assert s.stop() == 0, s.output()


def test_filters_see_every_request_not_only_the_first_page(
    tmp_path: Path, browser: Any
) -> None:
    """Review (web): the dashboard asked for one page of listinvoicerequests (at most 1,000
    records or 1 MiB) and filtered "used", "disabled" and dates in the page over it: a
    request past the first page was silently missing. Lists now answer every record (issue
    25), which the premise checks; with 100 kB labels (which ended a page after about ten
    requests before that) the twelfth, disabled, must still be found."""
    s = Server(tmp_path / "data").start()
    try:
        made = [
            s.rpc.call(
                "invoicerequest",
                {"amount": 1000, "description": f"r{i}", "label": f"{i}-" + "x" * 100_000},
            )
            for i in range(12)
        ]
        s.rpc.call("disableinvoicerequest", [made[-1]["invreq_id"]])
        first = s.rpc.call("listinvoicerequests", {"index": "created", "start": 0})
        assert len(first["invoicerequests"]) == 12  # the premise: no page cut anywhere
        rune = s.rpc.call("createrune", {})["rune"]
        driver = browser(size=WIDE)
        log_in(driver, f"http://127.0.0.1:{s.http_port}/dashboard", rune)
        wait_until(lambda: len(rows(driver, "requests")) == 12, what="all twelve listed")
        Select(driver.find_element(By.ID, "f-state")).select_by_value("disabled")
        driver.find_element(By.CSS_SELECTOR, "#filters button").click()
        wait_until(lambda: len(rows(driver, "requests")) == 1, what="the disabled one")
        got = rows(driver, "requests")[0].get_attribute("data-invreq-id")
        assert got == made[-1]["invreq_id"]
    finally:
        assert s.stop() == 0, s.output()


def test_cross_site_requests_cannot_act(tmp_path: Path) -> None:
    s = Server(tmp_path / "data").start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "x"})
        base = f"http://127.0.0.1:{s.http_port}"
        with urllib.request.urlopen(base + "/dashboard") as resp:
            assert resp.headers["Content-Security-Policy"] == CSP
            assert resp.headers["Set-Cookie"] is None
        # What a form on another site can send: no Rune header, so refused (403).
        form = urllib.request.Request(
            base + "/v1/disableinvoicerequest",
            data=f"invreq_id={r['invreq_id']}".encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": "https://evil.example",
            },
        )
        try:
            urllib.request.urlopen(form)
        except urllib.error.HTTPError as e:
            assert e.code == 403
            assert json.loads(e.read())["message"] == "Not authorized: Missing rune"
        else:
            raise AssertionError("a request without a rune was served")
        # The preflight a cross-site fetch with a Rune header needs is never granted.
        preflight = urllib.request.Request(
            base + "/v1/disableinvoicerequest",
            method="OPTIONS",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "rune,content-type",
            },
        )
        try:
            with urllib.request.urlopen(preflight) as resp:
                granted = resp.headers.get("Access-Control-Allow-Origin")
        except urllib.error.HTTPError as e:
            granted = e.headers.get("Access-Control-Allow-Origin")
        assert granted is None
        assert s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]["active"]
    finally:
        assert s.stop() == 0, s.output()
