"""The binary's commands and start-up rules, and the server log after everything above ran."""
import json
import os
import secrets
import subprocess

import requests

from conftest import PASSWORD, register

BINARY = os.environ["PARLEY_BINARY"]
WORKDIR = os.environ["PARLEY_E2E_DIR"]
DATABASE_URL = os.environ["PARLEY_E2E_DATABASE_URL"]


def run(args, env=None, stdin=None, cwd=WORKDIR):
    full_env = {"PATH": os.environ["PATH"], "HOME": cwd, **(env or {})}
    return subprocess.run([BINARY, *args], env=full_env, input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_production_refuses_without_a_secret():
    result = run(["serve"], env={"PARLEY_ENV": "production", "PARLEY_DATABASE_URL": DATABASE_URL})
    assert result.returncode != 0
    assert "PARLEY_SECRET_KEY" in result.stderr


def test_production_refuses_an_unmigrated_schema(tmp_path):
    env = {"PARLEY_ENV": "production", "PARLEY_SECRET_KEY": secrets.token_urlsafe(48),
           "PARLEY_DATABASE_URL": f"sqlite://{tmp_path}/fresh.sqlite", "PARLEY_PORT": "1"}
    result = run(["serve"], env=env, cwd=str(tmp_path))
    assert result.returncode != 0
    assert "parley migrate" in result.stderr and "CreateUsers" in result.stderr

    migrated = run(["migrate", "--yes"], env=env, cwd=str(tmp_path))
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    reverted = run(["migrate", "--revert", "--yes"], env=env, cwd=str(tmp_path))
    assert reverted.returncode == 0, reverted.stdout + reverted.stderr


def test_create_admin_reads_the_password_from_stdin(base_url, handle):
    password = "admin-" + secrets.token_urlsafe(12)
    result = run(["create-admin", "--handle", handle], env={"PARLEY_DATABASE_URL": DATABASE_URL}, stdin=password + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert password not in result.stdout + result.stderr
    login = requests.post(f"{base_url}/v1/auth/login", json={"handle": handle, "password": password})
    assert login.status_code == 200, login.text
    assert login.json()["user"]["role"] == "admin"

    weak = run(["create-admin", "--handle", handle + "w"], env={"PARLEY_DATABASE_URL": DATABASE_URL}, stdin="short\n")
    assert weak.returncode != 0
    assert "password" in weak.stdout + weak.stderr


def test_log_is_json_lines_without_secrets(base_url, server_log, handle):
    tokens = register(base_url, handle)
    rotated = requests.post(f"{base_url}/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).json()
    browser = requests.Session()
    session = browser.post(f"{base_url}/v1/auth/session", json={"handle": handle, "password": PASSWORD})
    cookie = browser.cookies.get("parley_session")
    csrf = session.json()["csrf_token"]
    browser.patch(f"{base_url}/v1/me", json={"bio": "x"}, headers={"X-CSRF-Token": csrf})
    requests.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {rotated['access_token']}", "X-Request-ID": "log-probe-1"})

    with open(server_log, encoding="utf-8") as f:
        lines = f.read().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    probe = [r for r in records if r.get("request_id") == "log-probe-1" and r.get("message") == "request"]
    assert len(probe) == 1
    assert probe[0]["route"] == "/v1/me" and probe[0]["status"] == 200 and probe[0]["user_id"] == tokens["user"]["id"]
    text = "\n".join(lines)
    for secret in [PASSWORD, tokens["access_token"], tokens["refresh_token"], rotated["access_token"],
                   rotated["refresh_token"], cookie, csrf]:
        assert secret and secret not in text


def test_commands_in_a_fresh_folder(tmp_path):
    # Help and `routes` touch no database; `migrate` without a terminal asks for --yes
    # instead of crashing; `create-admin` and `seed` migrate a fresh database first.
    cwd = str(tmp_path)
    env = {"PARLEY_BCRYPT_COST": "4"}
    for args in (["--help"], ["serve", "--help"], ["routes"]):
        result = run(args, env=env, cwd=cwd)
        assert result.returncode == 0, args
        assert not os.path.exists(tmp_path / "parley.sqlite"), args

    unconfirmed = run(["migrate"], env=env, stdin="", cwd=cwd)
    assert unconfirmed.returncode != 0
    assert "--yes" in unconfirmed.stderr
    assert "Fatal error" not in unconfirmed.stderr

    admin = run(["create-admin", "--handle", "root"], env=env, stdin="a long enough admin password\n", cwd=cwd)
    assert admin.returncode == 0, admin.stdout + admin.stderr
    seeded = run(["seed", "--users", "3", "--conversations", "2", "--messages", "5"], env=env, cwd=str(tmp_path))
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    assert "Seeded 3 users" in seeded.stdout + seeded.stderr
