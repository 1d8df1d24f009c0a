"""Shared fixtures for the end-to-end suite: a running `parley serve` given by --base-url."""
import time

import pytest
import requests


def pytest_addoption(parser):
    parser.addoption("--base-url", required=True, help="where the parley server under test listens")
    parser.addoption("--server-log", required=True, help="the server's log file (JSON lines)")


@pytest.fixture(scope="session")
def base_url(request):
    url = request.config.getoption("--base-url").rstrip("/")
    # Wait for the freshly started server to accept connections (start-up, migrations).
    deadline = time.monotonic() + 120
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return url
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"parley did not come up at {url}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def server_log(request):
    return request.config.getoption("--server-log")


_counter = iter(range(1_000_000))


@pytest.fixture
def handle():
    """A fresh handle per test, unique across runs against the same database."""
    return f"e2e{int(time.time() * 1000) % 10**9}x{next(_counter)}"


PASSWORD = "correct horse battery staple"


def register(base_url, handle, password=PASSWORD, **extra):
    response = requests.post(f"{base_url}/v1/auth/register", json={"handle": handle, "password": password, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def assert_problem(response, status, type_=None):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["type"], str)
    assert body["instance"].startswith("/")
    assert body["request_id"] == response.headers["X-Request-ID"]
    if type_ is not None:
        assert body["type"] == type_, body
    return body
