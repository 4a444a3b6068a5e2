"""The payee page in a real browser (headless Chromium from Debian, driven by selenium).

Payments are made through tests/fake_lightningd.py, which STANDS IN FOR lightningd (no
Lightning node runs here; it answers xpay/listpays and pays nothing).
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _browser import keep_screenshot, read_qr
from _lightningd import FakeLightningd, invoice_for, wait_until
from _service_fixtures import Server
from invreq.web.headers import CSP
from pyln.client import RpcError
from selenium.webdriver.common.by import By

STATE = (By.ID, "state")


def serve(tmp_path: Path, ln: FakeLightningd | None, *args: str) -> Server:
    pay = f"cln:{ln.socket}" if ln else "none"
    return Server(tmp_path / "data", extra_args=["--pay-with", pay, *args]).start()


def state_of(driver: Any) -> str:
    return str(driver.find_element(*STATE).get_attribute("data-state"))


def words(driver: Any) -> str:
    return str(driver.find_element(By.ID, "state-words").text)


def no_console_errors(driver: Any) -> None:
    """No CSP violation nor script error was logged by the page."""
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_page_shows_the_request_and_its_qr_code_reads_back(tmp_path: Path, browser: Any) -> None:
    s = serve(tmp_path, None)
    try:
        r = s.rpc.call(
            "invoicerequest",
            {
                "amount": 50_001,
                "description": "ATM <script>alert(1)</script> withdrawal",
                "issuer": "Bob's <b>ATM</b> & Co",
                "label": "operator-only label",
                "absolute_expiry": int(time.time()) + 3600,
            },
        )
        assert r["page_url"] == f"http://127.0.0.1:{s.http_port}/r/{r['invreq_id']}"
        listed = s.rpc.call("listinvoicerequests", [r["invreq_id"]])["invoicerequests"][0]
        assert listed["page_url"] == r["page_url"]

        driver = browser()
        driver.get(r["page_url"])
        assert state_of(driver) == "waiting"
        assert words(driver) == "Waiting for your invoice"
        # Escaped, shown as text: no element was injected.
        assert driver.find_element(By.ID, "description").text == (
            "ATM <script>alert(1)</script> withdrawal"
        )
        assert driver.find_element(By.ID, "issuer").text == "Bob's <b>ATM</b> & Co"
        assert driver.find_elements(By.CSS_SELECTOR, "main script, main b") == []
        assert driver.find_element(By.ID, "amount").text == "50.001 sat"
        assert "50,001 msat" in driver.find_element(By.TAG_NAME, "dl").text
        # The string, the wallet link and the copy button (shown by the script).
        assert driver.find_element(By.ID, "bolt12").get_attribute("value") == r["bolt12"]
        assert driver.find_element(By.ID, "open").get_attribute("href") == (
            "lightning:" + r["bolt12"]
        )
        assert driver.find_element(By.ID, "copy").is_displayed()
        # The expiry in the viewer's time: the script replaced the server's UTC text.
        expiry = driver.find_element(By.ID, "expiry")
        assert "UTC" not in expiry.text and expiry.get_attribute("data-unix")
        # Nothing for the operator's eyes only.
        source = driver.page_source
        assert "operator-only label" not in source
        assert s.rpc.call("getinfo")["id"] not in source

        keep_screenshot(driver, tmp_path, "payee-page.png")
        qr = driver.find_element(By.ID, "qr").screenshot_as_png
        assert read_qr(qr) == [r["bolt12"].upper()]
        no_console_errors(driver)
    finally:
        assert s.stop() == 0, s.output()


def test_state_turns_paid_live_when_the_payment_completes(
    tmp_path: Path, browser: Any, lightningd: Any
) -> None:
    ln = lightningd("--mode", "hang")
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", {"amount": 21_000, "description": "refund #7"})
        driver = browser()
        driver.get(r["page_url"])
        assert state_of(driver) == "waiting"
        # A mark on the window: gone if the page were reloaded.
        driver.execute_script("window.notReloaded = true")

        inv = invoice_for(r["bolt12"])
        outcome: list[Any] = []

        def receive() -> None:
            try:
                outcome.append(s.rpc.call("receiveinvoice", [inv]))
            except RpcError as e:
                outcome.append(e.error)

        payer = threading.Thread(target=receive)
        payer.start()
        ln.wait_for_xpays(1)
        wait_until(lambda: state_of(driver) == "paying", what="page shows paying")
        assert words(driver) == "Invoice received: paying"

        ln.settle(inv, "complete")
        payer.join(30)
        assert outcome and outcome[0]["status"] == "paid", outcome
        wait_until(lambda: state_of(driver) == "paid", what="page shows paid")
        assert words(driver) == "Paid"
        assert driver.find_element(By.ID, "paid-time").text  # when, in the viewer's time
        assert driver.execute_script("return window.notReloaded") is True
        keep_screenshot(driver, tmp_path, "payee-page-paid.png")
        no_console_errors(driver)
    finally:
        assert s.stop() == 0, s.output()


def test_without_javascript_the_page_shows_the_right_state(
    tmp_path: Path, browser: Any, lightningd: Any
) -> None:
    ln = lightningd()
    s = serve(tmp_path, ln)
    try:
        waiting = s.rpc.call("invoicerequest", {"amount": 1000, "description": "w"})
        paid = s.rpc.call("invoicerequest", {"amount": 2000, "description": "p"})
        assert s.rpc.call("receiveinvoice", [invoice_for(paid["bolt12"])])["status"] == "paid"
        disabled = s.rpc.call("invoicerequest", {"amount": 3000, "description": "d"})
        s.rpc.call("disableinvoicerequest", [disabled["invreq_id"]])
        expired = s.rpc.call(
            "invoicerequest",
            {"amount": 4000, "description": "e", "absolute_expiry": int(time.time()) - 1},
        )

        driver = browser(javascript=False)
        for request, state in (
            (waiting, "waiting"),
            (paid, "paid"),
            (disabled, "disabled"),
            (expired, "expired"),
        ):
            driver.get(request["page_url"])
            assert state_of(driver) == state, request["page_url"]
            # The copy button needs the script: hidden without it. The QR code and the
            # string are there.
            assert not driver.find_element(By.ID, "copy").is_displayed()
            assert driver.find_element(By.ID, "bolt12").get_attribute("value")
        # Until a final state, the page reloads itself (a <noscript> refresh).
        html = urllib.request.urlopen(waiting["page_url"]).read().decode()
        assert '<noscript><meta http-equiv="refresh"' in html
        html = urllib.request.urlopen(paid["page_url"]).read().decode()
        assert "http-equiv" not in html
        # The time of payment, server-rendered in UTC.
        driver.get(paid["page_url"])
        assert "UTC" in driver.find_element(By.ID, "paid-time").text
    finally:
        assert s.stop() == 0, s.output()


def test_refused_shows_a_reason_a_payee_may_see(
    tmp_path: Path, browser: Any, lightningd: Any
) -> None:
    ln = lightningd("--mode", "fail")
    s = serve(tmp_path, ln)
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "x"})
        try:
            s.rpc.call("receiveinvoice", [invoice_for(r["bolt12"])])
        except RpcError:
            pass
        driver = browser()
        driver.get(r["page_url"])
        assert state_of(driver) == "refused"
        reason = driver.find_element(By.ID, "state-reason").text
        assert reason == "The payment did not go through. Your wallet may send a new invoice."
        # The node's own error (it names the node and the route) stays with the operator.
        stored = s.rpc.call("listpayments", {"invreq_id": r["invreq_id"]})["payments"][0]
        assert stored["error"] not in driver.page_source
    finally:
        assert s.stop() == 0, s.output()


def test_security_headers_and_unknown_pages(tmp_path: Path) -> None:
    s = serve(tmp_path, None)
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "h"})
        base = f"http://127.0.0.1:{s.http_port}"
        for url in (r["page_url"], base + "/static/payee.js", base + "/static/invreq.css"):
            with urllib.request.urlopen(url) as resp:
                h = resp.headers
                assert h["Content-Security-Policy"] == CSP
                assert "frame-ancestors 'none'" in CSP and "script-src 'self'" in CSP
                assert "unsafe-inline" not in CSP
                assert h["X-Content-Type-Options"] == "nosniff"
                assert h["Referrer-Policy"] == "no-referrer"
                assert h["X-Frame-Options"] == "DENY"
                body = resp.read().decode()
            if url == r["page_url"]:
                # No inline script, no third-party resource.
                assert "<script>" not in body and "<script " in body
                assert "https://" not in body and "//" not in body.replace("http://www.w3.org", "")
                assert '<meta name="viewport"' in body
        for missing in ("/r/" + "0" * 64, "/r/not-an-id", "/r/" + r["invreq_id"] + "x"):
            try:
                urllib.request.urlopen(base + missing)
            except urllib.error.HTTPError as e:
                assert e.code == 404
                assert e.headers["Content-Security-Policy"] == CSP
            else:
                raise AssertionError(f"{missing} answered")
        # Events of an unknown request: 404 too.
        try:
            urllib.request.urlopen(base + "/r/" + "1" * 64 + "/events")
        except urllib.error.HTTPError as e:
            assert e.code == 404
    finally:
        assert s.stop() == 0, s.output()


def test_public_url_sets_page_url(tmp_path: Path) -> None:
    s = serve(tmp_path, None, "--public-url", "https://pay.example.com/invreq/")
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "p"})
        assert r["page_url"] == "https://pay.example.com/invreq/r/" + r["invreq_id"]
        # What `make run` prints at start: where the pages and the dashboard are.
        out = s.output()
        assert "payee pages at https://pay.example.com/invreq/r/<invreq_id>" in out
        assert "operator dashboard at https://pay.example.com/invreq/dashboard" in out
    finally:
        assert s.stop() == 0, s.output()
    bad = Server(tmp_path / "bad", extra_args=["--public-url", "ftp://x"])
    try:
        bad.start()
    except RuntimeError as e:
        assert "--public-url" in str(e)
    else:
        bad.stop()
        raise AssertionError("--public-url ftp://x was accepted")


def test_no_page_url_when_http_is_off(tmp_path: Path) -> None:
    s = Server(tmp_path / "data", extra_args=[]).start()
    s.stop()
    # Port 0 turns HTTP off; the server's readiness check uses the unix socket.
    s = Server(tmp_path / "data")
    s.http_port = 0
    s.start()
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "n"})
        assert "page_url" not in r
    finally:
        assert s.stop() == 0, s.output()


def _low_open_files() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def _open_stream(port: int, path: str) -> tuple[Any, bytes]:
    """A raw connection asking for an event stream that then never reads: (socket, the
    answer's first bytes)."""
    import socket

    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock, sock.recv(12)


def test_event_streams_never_take_every_http_connection(tmp_path: Path) -> None:
    """Review (web): a stream is a request in flight, so the HTTP door never evicts it, and
    at most MAX_STREAMS (256) ran whatever the door's cap: with a small open-files limit
    (here 256, so the door holds 64 connections) one page's holder filled every slot with
    streams and the RPC/REST door answered 503 to the operator. Streams get a quarter of
    the door's cap at most."""
    import json

    s = Server(tmp_path / "data", extra_args=["--pay-with", "none"])
    s.preexec_fn = _low_open_files
    s.start()
    held = []
    try:
        r = s.rpc.call("invoicerequest", {"amount": 1000, "description": "streams"})
        rune = s.rpc.call("createrune", {})["rune"]
        path = f"/r/{r['invreq_id']}/events"
        for _ in range(300):
            sock, head = _open_stream(s.http_port, path)
            held.append(sock)
            if not head.startswith(b"HTTP/1.1 200"):
                break
        assert head.startswith(b"HTTP/1.1 503"), head
        streams = len(held) - 1
        assert 0 < streams < 64, streams
        # The operator's door still answers while the streams are held.
        req = urllib.request.Request(
            f"http://127.0.0.1:{s.http_port}/v1/getinfo",
            data=b"{}",
            headers={"Rune": rune, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 201 and "id" in json.loads(resp.read())
    finally:
        for sock in held:
            sock.close()
        assert s.stop() == 0, s.output()
