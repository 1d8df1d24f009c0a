"""Every kind of bad input gets its status and an RFC 9457 body, over a real socket."""
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
