"""Moderation and the model registry in the browser, against a real `parley serve` with a real
moderation model (trained by `parley model train` from a small file of examples). These run
after test_web.py (pytest takes the files in order): a model in production screens every
message sent from then on, so the module's fixture takes it out of production again at the end.
Playwright's `expect` waits for what it checks, so no test sleeps."""
import os
import re

import pytest
from playwright.sync_api import expect

from conftest import PASSWORD, SCREENSHOTS, api_session
from test_web import messages, send, start_conversation

SPAM = "FREE MONEY!!! Click here now to claim your prize"

# LABEL<TAB>TEXT, as `parley model train --data` reads it: messages to stop, and everyday ones.
STOP = """FREE MONEY!!! Click here to claim your cash prize now
You have WON a free iPhone, click this link to claim it today
Cheap pills online, buy now with a huge discount, no prescription
Earn $5000 a week working from home, click here to start now
Congratulations! You won the lottery, send your bank details to claim the prize
Limited offer: free gift card for the first 100 people, click now
Hot singles in your area want to meet you, click here
Get rich quick with this one crypto trick, buy now before it is too late
URGENT: your account is suspended, click this link and enter your password
Claim your FREE prize now!!! Only today, click the link
Make money fast, no work needed, click here for free cash
Buy followers and likes cheap, best price, click now
You are our lucky winner, claim your free reward now
Free casino bonus, win big money tonight, click to play
Lose 20 pounds in a week with these miracle pills, order now
Double your bitcoin in 24 hours, send now and get free money
Act now! Free vacation prize waiting, click here to claim
Cheap loans approved instantly, no credit check, apply now for cash
FREE MONEY for everyone who clicks this link right now
Win a brand new car, just click and claim your free prize
Exclusive deal, buy cheap watches now, huge discount, click here
Claim your free cash bonus today, limited offer, click now
Work from home and earn big money, click the link for free info
Your parcel is waiting, pay the fee at this link to claim it
Get free credits now!!! click here click here click here"""
FINE = """see you at the meeting tonight
Can someone water the plants on the balcony while I'm away?
The bins go out on Thursday this week because of the holiday
Thanks for the soup yesterday, it was lovely
Is anyone going to the market on Saturday morning?
The lift is broken again, I called the building manager
Does anyone have a ladder I could borrow this weekend?
Happy birthday Maria! Hope you have a great day
The parcel for flat 3 was left at my door, come and get it
Reminder: the residents' meeting is at 7pm in the hall
I found a set of keys near the front gate
The heating should be back on by the afternoon
Our cat got out, she is grey with a white paw, let me know if you see her
Who is organising the summer barbecue this year?
Please keep the stairwell clear, the fire inspection is on Monday
I can lend my drill if anyone needs it
The new bakery on the corner is really good
Could we fix a date for cleaning the courtyard?
There is a leak in the laundry room, I put a bucket under it
Welcome to the building, nice to meet you all
The kids are having a football match in the park at four
Let me know if the noise from our renovation is too much
I left some spare tomatoes in the hall, help yourselves
The internet was down this morning, is it working for you now?
Good night everyone, see you tomorrow"""


@pytest.fixture(scope="module")
def admin(server):
    """An administrator made with `parley create-admin`, and moderation@1 trained with
    `parley model train` and put in production over the API. Afterwards no version serves and
    the site's policy is the default again, as the other tests expect."""
    server.command("create-admin", "--handle", "boss", "--display-name", "Boss", input=f"{PASSWORD}\n")
    examples = os.path.join(server.dir, "moderation-examples.tsv")
    with open(examples, "w") as f:
        f.writelines(f"spam\t{line}\n" for line in STOP.splitlines())
        f.writelines(f"ham\t{line}\n" for line in FINE.splitlines())
    assert "Trained moderation@1" in server.command("model", "train", "moderation", "--data", examples)
    session = api_session(server, "boss")
    response = session.put(f"{server.url}/v1/admin/models/moderation/versions/1/stage", json={"stage": "production"})
    assert response.status_code == 200 and response.json()["stage"] == "production", response.text
    yield session
    model = session.get(f"{server.url}/v1/admin/models/moderation").json()
    for version in model["versions"]:
        if version["stage"] in ("production", "canary", "shadow"):
            response = session.put(f"{server.url}/v1/admin/models/moderation/versions/{version['version']}/stage", json={"stage": "archived"})
            assert response.status_code == 200, response.text
    response = session.put(f"{server.url}/v1/moderation/policy", json={"flag_at": 0.5, "hold_at": 0.9, "block_at": None})
    assert response.status_code == 200, response.text


def open_conversation(person, title):
    person.page.locator(".conversation-list a.conversation").filter(has_text=title).click()
    expect(person.page.get_by_role("heading", level=1)).to_contain_text(title)


def versions_table(page):
    return page.get_by_role("table", name="Versions of moderation")


def version_row(page, number):
    return versions_table(page).get_by_role("row").filter(has=page.get_by_role("link", name=f"moderation@{number}", exact=True))


def test_a_held_message_waits_for_a_moderator_and_reports_reach_the_queue(people, server, admin):
    boss = people("boss").sign_in()
    page = boss.page
    staff = page.get_by_role("list", name="Site administration")
    expect(staff.get_by_role("link", name="Moderation")).to_be_visible()
    # The page says what this node serves once it has loaded what the registry's stages say.
    staff.get_by_role("link", name="Models").click()
    expect(page.locator(".serving")).to_have_text("Serving on this node: production moderation@1")
    # The site's policy, set in the moderation screen: hold from 0.9, flag from 0.6.
    staff.get_by_role("link", name="Moderation").click()
    expect(page.get_by_role("heading", name="Moderation", level=1)).to_be_visible()
    policy = page.get_by_role("form", name="Site policy")
    policy.get_by_label("Flag at").fill("0.6")
    policy.get_by_label("Hold at").fill("0.9")
    policy.get_by_label("Block at").fill("")
    policy.get_by_role("button", name="Save policy").click()
    expect(policy.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_role("list", name="Recent decisions")).to_contain_text("Boss changed the site's policy")

    tess = people("tess").sign_up()
    yara = people("yara").sign_up()
    zed = people("zed").sign_up()
    # Members see no staff links.
    expect(tess.page.get_by_role("link", name="Moderation")).to_have_count(0)
    start_conversation(tess, "group", "Neighbours", people=["yara", "zed"])
    send(tess, "see you at the meeting tonight")
    expect(messages(tess).locator(".message:not(.pending)", has_text="see you at the meeting tonight")).to_have_count(1)
    open_conversation(yara, "Neighbours")
    open_conversation(zed, "Neighbours")
    expect(messages(zed)).to_contain_text("see you at the meeting tonight")

    # Yara's spam is held: she sees it marked, with the model's score; the others see its place.
    send(yara, SPAM)
    held = messages(yara).locator(".message", has_text=SPAM)
    expect(held.locator(".moderation-mark")).to_have_text(re.compile(r"^Held for review · score 0\.9\d$"))
    yara.screenshot("moderation-held-author")
    for other in (tess, zed):
        expect(messages(other)).to_contain_text("A message is waiting for review.")
        expect(messages(other)).not_to_contain_text("FREE MONEY")
    placeholder = messages(tess).locator(".message.withheld")
    expect(placeholder).to_contain_text("yara")
    expect(placeholder.get_by_role("button")).to_have_count(0)
    tess.screenshot("moderation-held-others")
    # Tess's everyday message scored under the thresholds: no mark.
    expect(messages(tess).locator(".message", has_text="see you at the meeting tonight").locator(".moderation-mark")).to_have_count(0)

    # Zed reports Tess's message; one's own messages cannot be reported.
    expect(messages(tess).locator(".message", has_text="see you at the meeting tonight").get_by_role("button", name="Report")).to_have_count(0)
    reported = messages(zed).locator(".message", has_text="see you at the meeting tonight")
    reported.hover()
    reported.get_by_role("button", name="Report").click()
    report = zed.page.get_by_role("dialog", name="Report message")
    report.get_by_label("Why").select_option("Harassment or abuse")
    report.get_by_label("More about it (optional)").fill("the same words every night")
    report.get_by_role("button", name="Report").click()
    expect(report.get_by_role("status")).to_have_text("Reported. Thank you: a moderator will look at it.")
    zed.screenshot("moderation-reported")
    report.get_by_role("button", name="Done").click()
    expect(report).to_have_count(0)
    # Reporting again is accepted, and said to be a repeat.
    reported.hover()
    reported.get_by_role("button", name="Report").click()
    report.get_by_role("button", name="Report").click()
    expect(report.get_by_role("status")).to_have_text("You reported this message already; a moderator will look at it.")
    report.get_by_role("button", name="Done").click()

    # Max becomes a moderator (an administrator's API call); his next page load shows the link.
    max_ = people("max").sign_up()
    expect(max_.page.get_by_role("link", name="Moderation")).to_have_count(0)
    user_id = max_.page.evaluate("fetch('/v1/auth/session').then(r => r.json()).then(s => s.user.id)")
    response = admin.put(f"{server.url}/v1/admin/users/{user_id}/role", json={"role": "moderator"})
    assert response.status_code == 200 and response.json()["role"] == "moderator", response.text
    max_.page.reload()
    mod = max_.page
    mod.get_by_role("link", name="Moderation").click()
    expect(mod.get_by_role("link", name="Models")).to_have_count(0)
    queue = mod.get_by_role("region", name="Queue")
    expect(queue).to_contain_text("2 messages are waiting for a decision.")
    spam = queue.get_by_role("article").filter(has_text=SPAM)
    expect(spam).to_contain_text("Held")
    expect(spam.locator(".score")).to_have_text(re.compile(r"^score 0\.9\d$"))
    expect(spam).to_contain_text("moderation@1")
    expect(spam).to_contain_text("a conversation you are not in")
    complaint = queue.get_by_role("article").filter(has_text="see you at the meeting tonight")
    expect(complaint).to_contain_text("1 report")
    expect(complaint.get_by_role("list", name="Reports")).to_contain_text("zed: Harassment or abuse: the same words every night")
    # A moderator reads the policy; only administrators change it.
    expect(mod.get_by_role("form", name="Site policy").get_by_label("Hold at")).to_be_disabled()
    expect(mod.get_by_role("form", name="Site policy").get_by_label("Hold at")).to_have_value("0.9")
    max_.screenshot("moderation-queue")

    # Approved: it leaves the queue, and the others see its text arrive live.
    spam.get_by_role("button", name="Approve").click()
    expect(mod.get_by_role("status").filter(has_text="Approved")).to_have_text("Approved the message from yara.")
    expect(queue.get_by_role("article").filter(has_text=SPAM)).to_have_count(0)
    for other in (tess, zed):
        expect(messages(other).locator(".message .body", has_text=SPAM)).to_have_count(1)
        expect(messages(other)).not_to_contain_text("A message is waiting for review.")
    expect(held.locator(".moderation-mark")).to_have_count(0)

    # Removed, with a reason: a tombstone for everyone.
    complaint.get_by_role("button", name="Remove").click()
    removal = mod.get_by_role("dialog", name="Remove message")
    removal.get_by_label("Reason").fill("Breaks the house rules")
    removal.get_by_role("button", name="Remove message").click()
    expect(removal).to_have_count(0)
    expect(queue).to_contain_text("Nothing is waiting for a decision.")
    for person in (tess, yara, zed):
        expect(messages(person)).to_contain_text("This message was removed by a moderator.")
        expect(messages(person)).not_to_contain_text("see you at the meeting tonight")
    decisions = mod.get_by_role("list", name="Recent decisions")
    expect(decisions).to_contain_text("approved a message")
    expect(decisions).to_contain_text("removed a message: Breaks the house rules")
    # The conversation's preview in the sidebar shows the approved text too.
    expect(tess.page.locator(".conversation-list a.conversation").filter(has_text="Neighbours")).to_contain_text(SPAM[:20])


def test_the_models_page_trains_shows_a_report_promotes_and_rolls_back(people, server, admin):
    boss = people("boss").sign_in()
    page = boss.page
    page.get_by_role("list", name="Site administration").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="moderation", level=2)).to_be_visible()
    expect(version_row(page, 1).locator(".stage")).to_have_text("production")
    expect(version_row(page, 1)).to_contain_text("50")
    # Version 1's live metrics (the two decisions of the test before, on messages it scored)
    # and its drift on this node (too few messages for a PSI yet).
    expect(version_row(page, 1)).to_contain_text("of 2")
    drift = page.get_by_role("table", name="Drift of moderation@1 by feature")
    expect(drift.get_by_role("row").filter(has_text="Score")).to_contain_text("not yet")

    # Training runs in the background; the new version appears as a candidate when it is done.
    page.get_by_role("button", name="Train a new version").click()
    expect(version_row(page, 2).locator(".stage")).to_have_text("candidate", timeout=120_000)
    expect(page.get_by_role("status")).to_contain_text("Trained moderation@2, a candidate")
    boss.screenshot("models")

    # Its report: the confusion matrix, the metrics, the grid search.
    version_row(page, 2).get_by_role("link", name="moderation@2").click()
    expect(page.get_by_role("heading", name="moderation@2", level=1)).to_be_visible()
    confusion = page.get_by_role("table", name="Confusion matrix")
    expect(confusion.locator("tbody th")).to_have_text(["Fine", "Should stop"])
    # Every example is in one of its four cells (50 from the file, 2 from the moderator's decisions).
    counts = confusion.locator("tbody td").all_text_contents()
    assert len(counts) == 4 and sum(map(int, counts)) == 52, counts
    expect(page.get_by_role("region", name="Metrics")).to_contain_text("ROC-AUC")
    expect(page.get_by_role("region", name="Metrics")).to_contain_text("Brier score")
    grid = page.get_by_role("table", name="Grid search")
    expect(grid.get_by_role("row")).to_have_count(4)
    expect(grid).to_contain_text("(chosen)")
    expect(page.get_by_role("region", name="Learning curve")).to_be_visible()
    # The report's pictures, drawn by the server.
    picture = page.get_by_role("img", name="Confusion matrix of moderation@2")
    expect(picture).to_have_js_property("complete", True)
    assert picture.evaluate("image => image.naturalWidth") > 0
    boss.screenshot("model-version")
    page.get_by_role("link", name="All models").click()

    # Promoted: version 2 serves, version 1 is archived (and kept to roll back to).
    version_row(page, 2).get_by_role("button", name="Promote to production").click()
    expect(version_row(page, 2).locator(".stage")).to_have_text("production")
    expect(version_row(page, 1).locator(".stage")).to_have_text("archived")
    expect(page.locator(".serving")).to_have_text("Serving on this node: production moderation@2")
    assert any("Put moderation@2 in production?" in text for text in boss.dialogs), boss.dialogs

    # Rolled back, with a reason: version 1 serves again.
    version_row(page, 2).get_by_role("button", name="Roll back").click()
    rollback = page.get_by_role("dialog", name="Roll back moderation@2")
    rollback.get_by_label("Reason").fill("More false positives on the night shift")
    rollback.get_by_role("button", name="Roll back").click()
    expect(version_row(page, 1).locator(".stage")).to_have_text("production")
    expect(version_row(page, 2).locator(".stage")).to_have_text("archived")
    expect(version_row(page, 2)).to_contain_text("rolled back: More false positives on the night shift")
    expect(page.get_by_role("status")).to_have_text("Rolled back moderation@2: moderation@1 is in production again.")
    expect(page.locator(".serving")).to_have_text("Serving on this node: production moderation@1")

    # Shadow: version 2 scores alongside production, with no effect.
    version_row(page, 2).get_by_role("button", name="Shadow").click()
    expect(version_row(page, 2).locator(".stage")).to_have_text("shadow")
    expect(page.locator(".serving")).to_have_text("Serving on this node: production moderation@1 · shadow moderation@2")
    # A message both score: the comparison appears (the page reads the model again every 10 s).
    tess = api_session(server, "tess")
    neighbours = next(c for c in tess.get(f"{server.url}/v1/conversations").json()["items"] if c.get("title") == "Neighbours")
    response = tess.post(f"{server.url}/v1/conversations/{neighbours['id']}/messages", json={"body": "the courtyard party starts at six"},
                         headers={"Idempotency-Key": "shadow-1"})
    assert response.status_code == 201, response.text
    expect(page.get_by_role("heading", name="Shadow moderation@2 beside production moderation@1")).to_be_visible(timeout=30_000)
    boss.screenshot("models-after-rollback")
