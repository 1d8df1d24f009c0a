"""Every kind of bad input gets its status and an RFC 9457 body, over a real socket."""
import json
import socket
import time

import requests

from conftest import assert_problem


def test_malformed_json_is_400(base_url):
    response = requests.post(f"{base_url}/v1/auth/login", data='{"handle": ', headers={"Content-Type": "application/json"})
    assert_problem(response, 400)


def test_unknown_route_is_404(base_url):
    assert_problem(requests.get(f"{base_url}/v1/does-not-exist"), 404)


def test_wrong_method_is_405_with_allow(base_url):
    response = requests.get(f"{base_url}/v1/auth/register")
    assert_problem(response, 405)
    assert response.headers["Allow"] == "POST"


def test_body_over_the_limit_is_413(base_url):
    response = requests.post(f"{base_url}/v1/auth/login", data="x" * (300 * 1024), headers={"Content-Type": "application/json"})
    assert_problem(response, 413)


def test_wrong_content_type_is_415(base_url):
    response = requests.post(f"{base_url}/v1/auth/login", data="handle=a&password=b",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(response, 415)


def test_validation_names_every_field(base_url):
    response = requests.post(f"{base_url}/v1/auth/register", json={"handle": "x!", "email": "nope", "password": "short"})
    body = assert_problem(response, 422, "/problems/validation-failed")
    assert {e["field"] for e in body["errors"]} == {"handle", "email", "password"}


def test_request_id_is_echoed_or_generated(base_url):
    assert requests.get(f"{base_url}/healthz", headers={"X-Request-ID": "e2e-req-1"}).headers["X-Request-ID"] == "e2e-req-1"
    generated = requests.get(f"{base_url}/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated and generated != "bad id with spaces"


def test_health_ready_metrics_openapi(base_url):
    assert requests.get(f"{base_url}/healthz").json() == {"status": "ok"}
    ready = requests.get(f"{base_url}/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    metrics = requests.get(f"{base_url}/metrics").text
    assert 'parley_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert requests.get(f"{base_url}/openapi.yaml").text.startswith("openapi: 3.1.0")


def _login_lines(server_log):
    with open(server_log) as log:
        lines = [json.loads(line) for line in log if line.startswith("{")]
    return lines, [line for line in lines if line.get("message") == "request" and line.get("route") == "/v1/auth/login"]


def test_a_client_that_hangs_up_mid_body_is_not_a_server_error(base_url, server_log):
    # Half a body, then the socket closes: a client abort, never a 500 in the log or metrics.
    _, before = _login_lines(server_log)
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b'POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                           b'Content-Length: 100\r\n\r\n{"handle":"x"')
    # The server has handled the abort once its access-log line is written (nothing else signals it).
    deadline = time.monotonic() + 30
    while True:
        lines, after = _login_lines(server_log)
        if len(after) > len(before) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    new = after[len(before):]
    assert new, "the aborted request was never logged"
    assert [line["status"] for line in new] == [400]
    assert not [line for line in lines if line.get("message") == "unhandled error"]
    metrics = requests.get(f"{base_url}/metrics").text
    assert 'route="/v1/auth/login",status="500"' not in metrics
