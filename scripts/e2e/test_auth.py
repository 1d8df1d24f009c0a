"""Accounts over real HTTP: register, login, refresh rotation, reuse detection, sessions, CSRF."""
import requests

from conftest import PASSWORD, assert_problem, register


def test_register_login_me(base_url, handle):
    registered = register(base_url, handle, display_name="End To End")
    assert registered["token_type"] == "Bearer"
    assert registered["expires_in"] == 900
    assert registered["user"]["handle"] == handle

    login = requests.post(f"{base_url}/v1/auth/login", json={"handle": handle.upper(), "password": PASSWORD})
    assert login.status_code == 200, login.text
    me = requests.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.status_code == 200
    assert me.json()["display_name"] == "End To End"


def test_refresh_rotation_and_reuse_detection(base_url, handle):
    first = register(base_url, handle)
    second = requests.post(f"{base_url}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]

    # The first token was rotated away: presenting it again ends the whole family.
    reuse = requests.post(f"{base_url}/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(reuse, 401, "/problems/refresh-token-reused")
    assert_problem(requests.post(f"{base_url}/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)
    assert_problem(requests.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"}), 401)


def test_logout(base_url, handle):
    tokens = register(base_url, handle)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert requests.post(f"{base_url}/v1/auth/logout", headers=auth).status_code == 204
    assert_problem(requests.get(f"{base_url}/v1/me", headers=auth), 401)


def test_browser_session_and_csrf(base_url, handle):
    register(base_url, handle)
    browser = requests.Session()
    signed_in = browser.post(f"{base_url}/v1/auth/session", json={"handle": handle, "password": PASSWORD})
    assert signed_in.status_code == 201, signed_in.text
    set_cookie = signed_in.headers["Set-Cookie"]
    assert "parley_session=" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    csrf = signed_in.json()["csrf_token"]

    assert browser.get(f"{base_url}/v1/me").json()["handle"] == handle
    assert_problem(browser.patch(f"{base_url}/v1/me", json={"bio": "no token"}), 403, "/problems/csrf-failed")
    updated = browser.patch(f"{base_url}/v1/me", json={"bio": "with token"}, headers={"X-CSRF-Token": csrf})
    assert updated.status_code == 200, updated.text
    assert updated.json()["profile"]["bio"] == "with token"

    assert browser.delete(f"{base_url}/v1/auth/session", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert_problem(browser.get(f"{base_url}/v1/me"), 401)


def test_password_change_ends_other_sessions(base_url, handle):
    phone = register(base_url, handle)
    laptop = requests.post(f"{base_url}/v1/auth/login", json={"handle": handle, "password": PASSWORD}).json()
    changed = requests.put(
        f"{base_url}/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "an entirely new passphrase"},
        headers={"Authorization": f"Bearer {laptop['access_token']}"},
    )
    assert changed.status_code == 204, changed.text
    assert requests.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {laptop['access_token']}"}).status_code == 200
    assert_problem(requests.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {phone['access_token']}"}), 401)
