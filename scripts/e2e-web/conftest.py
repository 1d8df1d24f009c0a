"""Fixtures for the browser tests: a real `parley serve` on SQLite (with the offline
`scripted` model provider and one assistant), and Debian's Chromium driven by Playwright.

Environment (set by scripts/test):
  PARLEY_BINARY       the parley executable
  PARLEY_E2E_DIR      a scratch directory (screenshots go to <dir>/screenshots)
  PARLEY_CHROMIUM     the browser (default /usr/bin/chromium)
"""
import os
import signal
import socket
import subprocess
import time

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

BINARY = os.environ["PARLEY_BINARY"]
WORK = os.environ["PARLEY_E2E_DIR"]
CHROMIUM = os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.path.join(WORK, "screenshots")
PASSWORD = "correct horse battery staple"
REPLY = "Here is what I found in the recent messages of this conversation."

# The machines these run on are shared and slow at times: wait up to 15 s for what a check
# expects (a check that holds returns at once; one that never holds fails all the same).
expect.set_options(timeout=15_000)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `parley serve` on a SQLite file; it can be restarted on the same port and file."""

    def __init__(self):
        self.dir = os.path.join(WORK, "server")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"PATH": os.environ["PATH"], "HOME": self.dir, "PARLEY_PORT": str(self.port),
                    "PARLEY_DATABASE_URL": f"sqlite://{self.dir}/parley.sqlite", "PARLEY_BCRYPT_COST": "8",
                    "PARLEY_DATA_DIR": os.path.join(self.dir, "data"), "PARLEY_PUSH_SUBJECT": "mailto:ops@parley.test",
                    "PARLEY_LLM_PROVIDERS": "offline", "PARLEY_LLM_OFFLINE_KIND": "scripted",
                    "PARLEY_LLM_OFFLINE_SCRIPT": REPLY, "PARLEY_LLM_OFFLINE_WORD_DELAY_MS": "100",
                    # Presence is pushed through direct conversations only, so a group's Members
                    # dialog must ask for it by name; and offline is said a second after the last tab closes.
                    "PARLEY_PRESENCE_PUSH_LIMIT": "2", "PARLEY_PRESENCE_GRACE": "1"}
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.process = None

    def command(self, *args, input=None):
        """Runs `parley ARGS…` with the server's environment; `input` is its standard input."""
        result = subprocess.run([BINARY, *args], env=self.env, cwd=self.dir, capture_output=True, text=True, timeout=120, input=input)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self):
        self.process = subprocess.Popen([BINARY, "serve"], env=self.env, cwd=self.dir, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            assert self.process.poll() is None, "parley serve exited"
            time.sleep(0.1)
        pytest.fail("parley serve did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def restart(self):
        self.stop()
        return self.start()


@pytest.fixture(scope="session")
def server():
    os.makedirs(SCREENSHOTS, exist_ok=True)
    server = Server()
    server.command("assistant", "create", "--handle", "helper", "--display-name", "Helper", "--provider", "offline",
                   "--model", "scripted", "--tools", "recent_messages", "--approval-tools", "recent_messages")
    # A long history for the scrolling test: one conversation of 10,000 messages.
    server.command("seed", "--users", "3", "--conversations", "1", "--messages", "10000")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class Person:
    """One person in their own browser context (their own cookies), with the page's errors."""

    def __init__(self, browser, server, handle, **context):
        self.handle = handle
        self.server = server
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.errors = []
        self.dialogs = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.accept()))

    def sign_in(self, password=PASSWORD):
        page = self.page
        page.goto(f"{self.server.url}/#/signin")
        page.get_by_label("Handle or email").fill(self.handle)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("navigation", name="Conversations").wait_for()
        return self

    def sign_up(self):
        page = self.page
        page.goto(f"{self.server.url}/#/signup")
        page.get_by_label("Handle", exact=True).fill(self.handle)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.get_by_role("navigation", name="Conversations").wait_for()
        return self

    def screenshot(self, name):
        self.page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"))

    def close(self):
        assert self.errors == [], f"{self.handle}'s page threw: {self.errors}"
        self.context.close()


@pytest.fixture
def people(browser, server):
    made = []

    def make(handle, **context):
        person = Person(browser, server, handle, **context)
        made.append(person)
        return person

    yield make
    for person in made:
        person.close()


def api_session(server, handle):
    """A requests session signed in as `handle` with the browser session (cookie + CSRF)."""
    session = requests.Session()
    response = session.post(f"{server.url}/v1/auth/session", json={"handle": handle, "password": PASSWORD})
    assert response.status_code == 201, response.text
    session.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return session
