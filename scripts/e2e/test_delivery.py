"""Delivery to people who are away: the e-mail digest, through a real SMTP server.

scripts/test starts aiosmtpd (PARLEY_E2E_MAILDIR is its maildir) and the server with
PARLEY_SMTP_URL pointing at it and a one-second digest delay.
"""
import email
import email.policy
import mailbox
import os
import time

import pytest
import requests

from conftest import register


def auth(user):
    return {"Authorization": f"Bearer {user['access_token']}"}


def wait_for_mail(maildir, address, timeout=30):
    """The first message to `address` in the maildir; the SMTP server writes it when it is sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(maildir):
            for message in mailbox.Maildir(maildir, factory=None, create=False):
                if address in message.get("To", ""):
                    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        time.sleep(0.2)
    pytest.fail(f"no e-mail reached {address} within {timeout} s")


def test_a_mention_left_unread_arrives_as_an_email_digest(base_url, handle):
    maildir = os.environ.get("PARLEY_E2E_MAILDIR")
    if not maildir:
        pytest.skip("run through scripts/test, which starts an SMTP server")
    ann = register(base_url, handle + "a")
    address = f"{handle}b@mail.e2e.test"
    ben = register(base_url, handle + "b", email=address)
    settings = requests.get(f"{base_url}/v1/notifications/email", headers=auth(ben), timeout=10).json()
    assert settings == {"enabled": True, "available": True, "address": address}
    group = requests.post(f"{base_url}/v1/conversations", headers=auth(ann), timeout=10,
                          json={"kind": "group", "title": "Digest", "member_ids": [ben["user"]["id"]]}).json()["id"]
    sent = requests.post(f"{base_url}/v1/conversations/{group}/messages", headers=auth(ann), timeout=10,
                         json={"body": f"@{handle}b the numbers are in"})
    assert sent.status_code == 201, sent.text

    message = wait_for_mail(maildir, address)
    assert message["From"] == "Parley <parley@e2e.test>"
    assert message["Subject"] == f"{handle}a mentioned you in Digest on Parley"
    body = message.get_content()
    assert f'"@{handle}b the numbers are in"' in body
    assert f"{base_url}/#/c/{group}/m/1" in body
