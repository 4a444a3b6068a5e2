"""Schemathesis drives the REST API from its own OpenAPI document (/swagger.json), bounded:
generated bodies for every operation, valid and invalid, against a real server on loopback.
The contract checked is the documented one: 201 with a JSON result, or 401/403/500 with a
JSON error object {code, message}; never another status, never a non-JSON reply, never an
internal error.

(Schemathesis's own pytest plugin does not load under this pytest, so the generated cases
are run through Hypothesis directly, one test per operation.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from _service_fixtures import Server
from hypothesis import HealthCheck, given, settings


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, Any]]:
    s = Server(tmp_path_factory.mktemp("st") / "data").start()
    rune = s.rpc.call("createrune", {})["rune"]
    try:
        yield s, rune, schemathesis.openapi.from_url(f"http://127.0.0.1:{s.http_port}/swagger.json")
    finally:
        assert s.stop() == 0, s.output()


def check(server: Server, response: Any) -> None:
    assert response.status_code in (201, 401, 403, 500), (response.status_code, response.text)
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), content_type
    body = response.json()
    if response.status_code != 201:
        assert set(body) <= {"code", "message", "data"} and isinstance(body["code"], int), body
        assert isinstance(body["message"], str)
        assert body["message"] != "internal error (see the server log)", body
    assert server.proc is not None and server.proc.poll() is None  # still up


def test_every_operation_answers_as_documented(api: tuple[Server, str, Any]) -> None:
    server, rune, schema = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for op in operations:
        run_operation(server, rune, op)
    assert server.rpc.call("getinfo")["network"] == "regtest"


def run_operation(server: Server, rune: str, op: Any) -> None:
    @given(case=op.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        if op.path == "/v1/wait" and isinstance(case.body, dict):
            # wait blocks until its index moves or its timeout: at most 1 s here, so each
            # generated case answers (2200 on the timeout) well within the client's 15 s.
            case.body["timeout"] = 1
        response = case.call(headers={"Rune": rune}, timeout=15)
        try:
            check(server, response)
        except AssertionError as e:
            raise AssertionError(f"{op.label} {case.body!r}: {e}") from None

    run()
