"""The web client in a real browser (Debian's Chromium, driven by Playwright) against a real
`parley serve`. Playwright's `expect` waits for what it checks, so no test sleeps."""
import json
import os
import re
import time

import requests
from playwright.sync_api import expect

from conftest import PASSWORD, REPLY, SCREENSHOTS, api_session


def start_conversation(person, kind="direct", name=None, people=()):
    """Starts a conversation through the New conversation dialog, as a person would."""
    page = person.page
    page.get_by_role("button", name="New conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    if kind != "direct":
        dialog.get_by_label("Kind").select_option(kind)
        dialog.get_by_label("Name").fill(name)
    for other in people:
        dialog.get_by_label("Find people").fill(other)
        dialog.get_by_role("option").filter(has_text=f"@{other}").click()
    dialog.get_by_role("button", name="Start").click()


def start_direct(person, other):
    start_conversation(person, people=[other])


def composer(person):
    return person.page.locator("main .composer-input")


def messages(person):
    return person.page.get_by_role("log", name="Messages")


def send(person, text):
    box = composer(person)
    box.fill(text)
    box.press("Enter")


def test_two_people_chat_live_with_typing_and_unread_counts(people, server):
    ann = people("ann").sign_up()
    bob = people("bob").sign_up()
    start_direct(ann, "bob")
    send(ann, "hello bob")
    expect(messages(ann)).to_contain_text("hello bob")

    # Bob was not looking: the conversation appears in his list, unread.
    entry = bob.page.locator(".conversation-list a.conversation").filter(has_text="ann")
    expect(entry.get_by_label("1 unread")).to_be_visible()
    bob.screenshot("conversation-list")
    entry.click()
    expect(messages(bob)).to_contain_text("hello bob")
    # Opening it at the bottom reads it.
    expect(entry.get_by_label("1 unread")).to_have_count(0)

    # Typing shows on the other side, then the message arrives live.
    composer(bob).press_sequentially("hi ann", delay=20)
    expect(ann.page.get_by_text("bob is typing…")).to_be_visible()
    composer(bob).press("Enter")
    expect(messages(ann)).to_contain_text("hi ann")
    expect(ann.page.get_by_text("bob is typing…")).to_have_count(0)
    ann.screenshot("conversation")
    # Exactly one of each: the optimistic echo was replaced by the stored message.
    expect(messages(ann).locator(".message .body", has_text="hello bob")).to_have_count(1)
    expect(messages(bob).locator(".message .body", has_text="hi ann")).to_have_count(1)


def test_edit_delete_react_and_reply_in_a_thread(people, server):
    cleo = people("cleo").sign_up()
    dan = people("dan").sign_up()
    start_direct(cleo, "dan")
    send(cleo, "first draft")
    send(cleo, "to be removed")
    expect(messages(cleo).locator(".message.pending")).to_have_count(0)
    seq = messages(cleo).locator(".message", has_text="first draft").get_attribute("data-seq")
    row = messages(cleo).locator(f'.message[data-seq="{seq}"]')

    dan.page.locator(".conversation-list a.conversation").filter(has_text="cleo").click()
    expect(messages(dan)).to_contain_text("to be removed")

    # Edit: Up in the empty composer edits my last message; here, the Edit button.
    row.hover()
    row.get_by_role("button", name="Edit").click()
    editor = row.get_by_label("Edit message")
    editor.fill("final text")
    editor.press("Enter")
    expect(messages(dan)).to_contain_text("final text")
    expect(messages(dan).locator(".message", has_text="final text")).to_contain_text("(edited)")

    # Delete: a tombstone on both sides.
    doomed = messages(cleo).locator(".message", has_text="to be removed")
    doomed.hover()
    doomed.get_by_role("button", name="Delete").click()
    expect(messages(dan)).to_contain_text("This message was deleted.")
    expect(messages(dan)).not_to_contain_text("to be removed")

    # React: Dan's 👍 shows on Cleo's screen with its count.
    theirs = messages(dan).locator(".message", has_text="final text")
    theirs.hover()
    theirs.get_by_role("button", name="React with 👍").click()
    expect(messages(cleo).locator(".message", has_text="final text").get_by_role("button", name="👍 1")).to_be_visible()

    # A thread: Dan replies; Cleo sees the count and opens the thread.
    theirs.hover()
    theirs.get_by_role("button", name="Reply").click()
    thread = dan.page.get_by_role("complementary", name="Thread")
    thread.get_by_role("textbox", name="Reply in thread").fill("a reply in the thread")
    thread.get_by_role("textbox", name="Reply in thread").press("Enter")
    expect(thread).to_contain_text("a reply in the thread")
    replies = messages(cleo).locator(".message", has_text="final text").get_by_role("button", name="1 reply")
    expect(replies).to_be_visible()
    replies.click()
    expect(cleo.page.get_by_role("complementary", name="Thread")).to_contain_text("a reply in the thread")
    # Replies live in their thread, not in the main timeline.
    expect(messages(cleo)).not_to_contain_text("a reply in the thread")
    cleo.screenshot("thread")


def test_search_finds_a_message_and_opens_it(people, server):
    eve = people("eve").sign_up()
    start_direct(eve, "ann")
    send(eve, "the quarterly zebra report is ready")
    for n in range(3):
        send(eve, f"filler {n}")
    expect(messages(eve)).to_contain_text("filler 2")
    search = eve.page.get_by_role("searchbox", name="Search messages").first
    search.fill("zebra")
    search.press("Enter")
    result = eve.page.get_by_role("list", name="Results").get_by_role("link").first
    expect(result.locator("mark")).to_have_text("zebra")
    eve.screenshot("search")
    result.click()
    expect(eve.page.locator(".message.highlight")).to_contain_text("the quarterly zebra report is ready")


def test_formatting_and_mentions_render_from_the_servers_structure(people, server):
    rae = people("rae").sign_up()
    sol = people("sol").sign_up()
    start_direct(rae, "sol")
    box = composer(rae)
    box.fill("**bold** and _italic_ with `code` for @sol\n> a quote\n\n- one\n- two\n\n```\nlet x = 1\n```")
    box.press("Enter")
    sol.page.locator(".conversation-list a.conversation").filter(has_text="rae").click()
    body = messages(sol).locator(".message .body").filter(has_text="bold")
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("em")).to_have_text("italic")
    expect(body.locator("p > code")).to_have_text("code")
    expect(body.locator("blockquote")).to_have_text("a quote")
    expect(body.locator("ul > li")).to_have_text(["one", "two"])
    expect(body.locator("pre > code")).to_have_text("let x = 1")
    # The mention names Sol: highlighted on Sol's screen, not on Rae's.
    expect(body.locator(".mention.me")).to_have_text("@sol")
    expect(messages(rae).locator(".message .body .mention.me")).to_have_count(0)
    expect(messages(rae).locator(".message .body .mention")).to_have_text("@sol")
    sol.screenshot("formatting")


def png(width, height):
    """A real PNG picture (a gradient), made with the standard library."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160)) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_files_are_attached_shown_as_thumbnails_and_downloaded(people, server):
    ora = people("ora").sign_up()
    pia = people("pia").sign_up()
    start_direct(ora, "pia")
    page = ora.page
    page.locator("main input[type=file]").set_input_files([
        {"name": "sunset.png", "mimeType": "image/png", "buffer": png(800, 400)},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"bring snacks"},
    ])
    pending = page.locator(".pending-file")
    expect(pending).to_have_count(2)
    # Each file uploads as soon as it is picked; its size shows when it is stored.
    expect(pending.filter(has_text="sunset.png")).to_contain_text("KB")
    expect(pending.filter(has_text="notes.txt")).to_contain_text("12 B")
    send(ora, "pictures from the trip")
    expect(pending).to_have_count(0)

    pia.page.locator(".conversation-list a.conversation").filter(has_text="ora").click()
    message = messages(pia).locator(".message").filter(has_text="pictures from the trip")
    picture = message.locator(".attachment.picture img")
    expect(picture).to_have_attribute("alt", "sunset.png")
    # The thumbnail loads (the server made it) and is at most 360 pixels wide.
    pia.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle())
    assert picture.evaluate("img => img.naturalWidth") == 360
    link = message.locator(".attachment.file a")
    expect(link).to_have_text("notes.txt")
    with pia.page.expect_download() as download:
        link.click()
    with open(download.value.path(), "rb") as handle:
        assert handle.read() == b"bring snacks"

    # A file with nothing else is a message too; an HTML page is refused whatever it is called.
    page.locator("main input[type=file]").set_input_files(
        {"name": "photo.png", "mimeType": "image/png", "buffer": b"<!DOCTYPE html><script>alert(1)</script>"})
    expect(page.locator(".pending-file.failed")).to_contain_text("text/html")
    page.get_by_role("button", name="Remove photo.png").click()
    page.locator("main input[type=file]").set_input_files({"name": "map.png", "mimeType": "image/png", "buffer": png(20, 20)})
    expect(page.locator(".pending-file").filter(has_text="map.png")).to_contain_text("B")
    composer(ora).press("Enter")
    expect(messages(pia).locator(".attachment.picture img[alt='map.png']")).to_be_visible()
    pia.screenshot("files")


def test_web_push_is_offered_and_the_service_worker_shows_a_push(people, server):
    xia = people("xia", permissions=["notifications"]).sign_up()
    page = xia.page
    page.get_by_role("button", name="Inbox").click()
    expect(page.get_by_role("button", name="Notify me on this device")).to_be_visible()
    assert page.evaluate("async () => (await navigator.serviceWorker.ready).scope") == server.url + "/"

    # No push service is reachable here, so the push arrives through the DevTools protocol, as
    # Chromium would hand it to the service worker; another tab has the focus.
    registrations = []
    cdp = xia.context.new_cdp_session(page)
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: registrations.extend(event["registrations"]))
    cdp.send("ServiceWorker.enable")
    for _ in range(100):  # each round trip lets Playwright hand over the events that came
        if registrations:
            break
        page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    assert registrations, "the service worker is registered"
    other = xia.context.new_page()
    other.bring_to_front()
    message = {"title": "ann mentioned you", "body": "@xia look", "url": "/#/", "notification_id": "n1", "tag": "conversation:x"}
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": server.url, "registrationId": registrations[0]["registrationId"],
                                                  "data": json.dumps(message)})
    page.wait_for_function("""async () => {
        const shown = await (await navigator.serviceWorker.ready).getNotifications();
        return shown.length === 1 && shown[0].title === "ann mentioned you" && shown[0].body === "@xia look";
    }""")
    other.close()


def test_the_inbox_shows_mentions_live_and_respects_mute(people, server):
    tia = people("tia").sign_up()
    uma = people("uma").sign_up()
    page = tia.page
    start_conversation(tia, "channel", "launch", people=["uma"])
    send(tia, "all hands at noon")
    send(tia, "@uma can you check the release notes?")
    # Uma, elsewhere, sees the count on her inbox and in the tab's title.
    bell = uma.page.get_by_role("button", name="Inbox, 1 unread")
    expect(bell).to_be_visible()
    expect(uma.page).to_have_title("(1) Parley")
    bell.click()
    inbox = uma.page.get_by_role("dialog", name="Inbox")
    item = inbox.get_by_role("link").filter(has_text="can you check the release notes?")
    expect(item).to_contain_text("tia mentioned you in # launch")
    uma.screenshot("inbox")
    item.click()
    expect(uma.page.locator(".message.highlight")).to_contain_text("can you check the release notes?")
    expect(uma.page.get_by_role("button", name="Inbox", exact=True)).to_be_visible()

    # Muted: @here stays quiet; naming her still gets through.
    uma.page.get_by_role("button", name="Mute").click()
    expect(uma.page.get_by_role("button", name="Unmute")).to_be_visible()
    # (Away from the channel: while she reads it, what arrives there is read at once.)
    uma.page.goto(f"{server.url}/#/")
    send(tia, "@here the build is green")
    send(tia, "@uma one more thing")
    uma.page.get_by_role("button", name="Inbox, 1 unread").click()
    inbox = uma.page.get_by_role("dialog", name="Inbox")
    expect(inbox.get_by_role("link").filter(has_text="one more thing")).to_be_visible()
    expect(inbox.get_by_role("link").filter(has_text="the build is green")).to_have_count(0)
    inbox.get_by_role("button", name="Mark all read").click()
    expect(uma.page.get_by_role("button", name="Inbox", exact=True)).to_be_visible()


def test_an_invite_link_brings_a_newcomer_straight_into_the_conversation(people, server):
    vic = people("vic").sign_up()
    page = vic.page
    start_conversation(vic, "group", "Choir")
    send(vic, "rehearsal on thursday")
    page.get_by_role("button", name="Invite").click()
    invite = page.get_by_role("dialog", name="Invite people")
    invite.get_by_label("Who may use it").select_option("1")
    invite.get_by_role("button", name="Make a link").click()
    link = invite.get_by_label("Invite link").input_value()
    assert "/#/join/" in link, link
    vic.screenshot("invite")

    # Someone with no account opens it, signs up, and is in the group.
    wyn = people("wyn")
    wyn.page.goto(link)
    expect(wyn.page.get_by_role("status").filter(has_text="invited")).to_have_text("You're invited to Choir.")
    wyn.page.get_by_label("Handle", exact=True).fill("wyn")
    wyn.page.get_by_label("Password").fill(PASSWORD)
    wyn.page.get_by_role("button", name="Create account").click()
    expect(messages(wyn)).to_contain_text("rehearsal on thursday")
    expect(wyn.page.get_by_role("heading", level=1)).to_contain_text("Choir")
    # The link was for one person: it is spent.
    assert requests.get(f"{server.url}/v1/join/{link.split('/join/')[1]}").status_code == 404


def test_markup_and_script_in_messages_do_nothing(people, server):
    fay = people("fay").sign_up()
    gus = people("gus").sign_up()
    start_direct(fay, "gus")
    payloads = [
        '<img src=x onerror="window.__pwned=1">',
        '<script>window.__pwned=2</script>',
        'javascript:window.__pwned=3',
        '[click](javascript:window.__pwned=4) <a href="javascript:window.__pwned=5">x</a>',
        '<svg onload="window.__pwned=6"></svg> `<b>code</b>` https://example.com/?q=<script>',
    ]
    for payload in payloads:
        send(fay, payload)
    gus.page.locator(".conversation-list a.conversation").filter(has_text="fay").click()
    for page in (fay.page, gus.page):
        log = page.get_by_role("log", name="Messages")
        for payload in payloads:
            expect(log.locator(".message .body", has_text=payload.split(" ")[0])).not_to_have_count(0)
        # The markup is shown as text, never made into elements; only our own link is a link.
        assert log.locator(".body img, .body script, .body svg, .body b").count() == 0
        hrefs = log.locator(".body a").evaluate_all("links => links.map(a => a.href)")
        assert all(href.startswith("https://example.com") for href in hrefs), hrefs
        assert page.evaluate("window.__pwned") is None
        for link in log.locator(".body a").all():
            assert link.get_attribute("rel") == "noopener noreferrer nofollow"


def test_keyboard_alone_signs_in_opens_a_conversation_and_sends(people, server, browser):
    hal = people("hal").sign_up()
    start_direct(hal, "ann")
    send(hal, "set up by mouse")
    hal.context.clear_cookies()
    page = hal.page
    page.goto(f"{server.url}/#/signin")
    page.reload()
    # Sign in with the keyboard: the handle field has focus.
    expect(page.get_by_label("Handle or email")).to_be_focused()
    page.keyboard.type("hal")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("navigation", name="Conversations").wait_for()
    # Tab to the conversation and open it (once the list has loaded: the sidebar comes first).
    target = page.locator(".conversation-list a.conversation").first
    expect(target).to_be_visible()
    # Focus may start before the list (the page) or after it (the composer, when the app reopens
    # the last conversation): Tab forward or Shift+Tab back towards it.
    after_list = """() => {
        const list = document.querySelector('.conversation-list'), active = document.activeElement;
        return !!(list && active && active !== document.body && !list.contains(active)
                  && (list.compareDocumentPosition(active) & Node.DOCUMENT_POSITION_FOLLOWING));
    }"""
    for _ in range(60):
        if page.evaluate("document.activeElement?.classList.contains('conversation')"):
            break
        page.keyboard.press("Shift+Tab" if page.evaluate(after_list) else "Tab")
    assert page.evaluate("document.activeElement?.classList.contains('conversation')"), "a conversation link takes focus"
    page.keyboard.press("Enter")
    # The composer has focus when a conversation opens; Enter sends.
    expect(page.locator("main .composer-input")).to_be_focused()
    page.keyboard.type("sent with the keyboard")
    page.keyboard.press("Enter")
    expect(messages(hal)).to_contain_text("sent with the keyboard")
    # Focus stays visible: the focused element has an outline.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_a_server_restart_resumes_both_clients_without_a_gap_or_a_duplicate(people, server):
    ivy = people("ivy").sign_up()
    jon = people("jon").sign_up()
    start_direct(ivy, "jon")
    send(ivy, "before the restart")
    jon.page.locator(".conversation-list a.conversation").filter(has_text="ivy").click()
    expect(messages(jon)).to_contain_text("before the restart")

    server.stop()
    # While the server is down, each page says so.
    for person in (ivy, jon):
        expect(person.page.get_by_role("status")).to_have_text("Reconnecting…", timeout=30_000)
    server.start()
    # Sent over the API the moment the server is back, before the browsers have reconnected.
    conversation = ivy.page.evaluate("location.hash").split("/")[2]
    other = api_session(server, "ivy")
    response = other.post(f"{server.url}/v1/conversations/{conversation}/messages", json={"body": "while you were away"},
                          headers={"Idempotency-Key": "restart-1"})
    assert response.status_code == 201, response.text

    for person in (ivy, jon):
        expect(messages(person)).to_contain_text("while you were away", timeout=30_000)
        expect(person.page.get_by_role("status")).to_be_hidden(timeout=30_000)
    send(jon, "after the restart")
    for person in (ivy, jon):
        expect(messages(person)).to_contain_text("after the restart")
        for text in ("before the restart", "while you were away", "after the restart"):
            expect(messages(person).locator(".message .body", has_text=text)).to_have_count(1)


def test_where_websockets_are_cut_it_falls_back_to_server_sent_events(people, server):
    nia = people("nia").sign_up()
    oto = people("oto")
    # Every WebSocket this page opens is accepted and closed at once, as by a proxy that does
    # not pass WebSockets; plain HTTP (and so Server-Sent Events) still works.
    oto.page.route_web_socket(re.compile(r"/v1/events"), lambda socket: socket.close())
    oto.sign_up()
    expect(oto.page.locator("html")).to_have_attribute("data-transport", "sse", timeout=30_000)
    start_direct(nia, "oto")
    send(nia, "over server-sent events")
    entry = oto.page.locator(".conversation-list a.conversation").filter(has_text="nia")
    expect(entry.get_by_label("1 unread")).to_be_visible()
    entry.click()
    send(nia, "and live while open")
    expect(messages(oto)).to_contain_text("and live while open")


def test_the_members_dialog_shows_who_is_online_in_a_group_too_big_for_pushed_presence(people, server):
    # The server pushes presence through conversations of at most 2 members here: in this group
    # of three the Members dialog asks for its people by name, and follows their changes.
    siv = people("siv").sign_up()
    tam = people("tam").sign_up()
    people("ulla").sign_up()
    start_conversation(siv, "group", "three of us", people=["tam", "ulla"])
    send(siv, "hello both")
    expect(messages(siv)).to_contain_text("hello both")
    siv.page.get_by_role("button", name="Members").click()
    members = siv.page.get_by_role("dialog", name="Members")
    tams = members.get_by_role("listitem").filter(has_text="@tam").locator(".presence")
    expect(tams).to_have_attribute("aria-label", "online")
    tam.page.close()
    expect(tams).to_have_attribute("aria-label", "offline", timeout=30_000)
    members.get_by_role("button", name="Close").click()


def test_channels_are_found_and_joined_and_profiles_change(people, server):
    pat = people("pat").sign_up()
    quin = people("quin").sign_up()
    page = pat.page
    start_conversation(pat, "channel", "gardening")
    send(pat, "tomatoes are up")
    expect(messages(pat)).to_contain_text("tomatoes are up")

    quin.page.get_by_role("button", name="Browse channels").click()
    channels = quin.page.get_by_role("dialog", name="Channels")
    channels.get_by_role("listitem").filter(has_text="# gardening").get_by_role("button", name="Join").click()
    expect(messages(quin)).to_contain_text("tomatoes are up")
    quin.page.get_by_role("button", name="Members").click()
    members = quin.page.get_by_role("dialog", name="Members")
    expect(members.get_by_role("listitem").filter(has_text="@pat")).to_contain_text("owner")
    expect(members.get_by_role("listitem").filter(has_text="@quin")).to_contain_text("member")
    members.get_by_role("button", name="Close").click()
    # The owner makes Quin an admin; Quin's own view shows it.
    page.get_by_role("button", name="Members").click()
    owner_view = page.get_by_role("dialog", name="Members")
    expect(owner_view.get_by_label("Role of @quin")).to_be_visible()
    owner_view.get_by_label("Role of @quin").select_option("admin")
    expect(owner_view.get_by_label("Role of @quin")).to_have_value("admin")
    owner_view.get_by_role("button", name="Close").click()

    quin.page.get_by_role("button", name="Profile").click()
    profile = quin.page.get_by_role("dialog", name="Profile")
    profile.get_by_label("Display name").fill("Quin the Gardener")
    profile.get_by_role("button", name="Save profile").click()
    expect(profile).to_contain_text("Saved.")
    profile.get_by_label("Current password").fill(PASSWORD)
    profile.get_by_label("New password").fill("a much longer garden password")
    profile.get_by_role("button", name="Change password").click()
    expect(profile).to_contain_text("Password changed.")
    profile.get_by_role("button", name="Close").click()
    send(quin, "hello gardeners")
    expect(messages(pat)).to_contain_text("hello gardeners")
    # Profile changes are not events yet: others see the new name when they next load.
    pat.page.reload()
    expect(messages(pat).locator(".message", has_text="hello gardeners")).to_contain_text("Quin the Gardener")
    # The new password signs in; the old one no longer does.
    assert requests.post(f"{server.url}/v1/auth/login", json={"handle": "quin", "password": PASSWORD}).status_code == 401
    assert requests.post(f"{server.url}/v1/auth/login", json={"handle": "quin", "password": "a much longer garden password"}).status_code == 200


def test_an_assistant_asks_for_approval_then_answers_and_shows_its_run(people, server):
    kim = people("kim").sign_up()
    start_direct(kim, "helper")
    send(kim, "what happened here?")
    card = kim.page.get_by_role("group", name="Approval request from Helper")
    expect(card).to_contain_text("recent_messages")
    kim.screenshot("approval")
    card.get_by_role("button", name="Approve").click()
    # The reply is written in front of everyone, word by word, before it is a message.
    streaming = kim.page.locator(".message.streaming .body")
    expect(streaming).to_contain_text("Here is")
    partial = streaming.text_content()
    assert REPLY.startswith(partial) and len(partial) < len(REPLY), partial
    kim.screenshot("streaming")
    reply = messages(kim).locator(".message", has_text=REPLY)
    expect(reply).to_be_visible()
    expect(card).to_have_count(0)
    expect(kim.page.locator(".message.streaming")).to_have_count(0)
    # A delta that arrives after its run ended (from another node, say) is not shown again.
    late = kim.page.evaluate("""async () => {
        // The app's own instance of the module: the same address app.js imports it from.
        const app = document.querySelector('script[type="module"]').src;
        const store = await import(new URL("lib/store.js", app).href);
        const run = [...store.state.runs.values()].find((r) => r.status === "completed");
        store.applyFrame({ type: "assistant.delta", conversation_id: run.conversation_id,
                           data: { run_id: run.id, assistant_id: run.assistant_id, turn: 9, index: 99, text: "late words" } });
        return run.id;
    }""")
    assert late
    expect(kim.page.locator(".message.streaming")).to_have_count(0)
    expect(messages(kim)).not_to_contain_text("late words")
    reply.hover()
    reply.get_by_role("button", name="Run").click()
    trace = kim.page.get_by_role("dialog", name="Run trace")
    expect(trace).to_contain_text("completed")
    expect(trace).to_contain_text("recent_messages")
    kim.screenshot("run-trace")


def test_a_history_of_ten_thousand_messages_keeps_only_the_rows_on_screen_in_the_page(people, server):
    seeded = people("seed-user-00001").sign_in(password="parley-seed-password")
    page = seeded.page
    page.locator(".conversation-list a.conversation").first.click()
    log = messages(seeded)
    expect(log.locator(".message").first).to_be_visible()
    total = page.evaluate("fetch(location.hash.replace('#/c/', '/v1/conversations/')).then(r => r.json()).then(c => c.last_seq)")
    assert total >= 10_000, total
    # Scroll to the top again and again: each time older pages load, and the rows in the page
    # stay about a screenful however many are loaded.
    started = time.monotonic()
    for _ in range(30):
        height = page.evaluate("document.querySelector('.messages').scrollHeight")
        page.evaluate("document.querySelector('.messages').scrollTop = 0")
        page.wait_for_function("h => document.querySelector('.messages').scrollHeight > h", arg=height, timeout=10_000)
    rows = log.locator(".rows:not(.extra) > li").count()
    height = page.evaluate("document.querySelector('.messages').scrollHeight")
    print(f"\n10,000-message conversation: {rows} rows in the page after scrolling back "
          f"{height // 56} rows' worth ({time.monotonic() - started:.1f} s)")
    assert rows <= 120, f"{rows} message rows are in the page"
    assert height > 60 * 56 * 10, "older pages loaded as the list was scrolled up"
    # Jump into the middle of the history from search-like links: the message is shown.
    page.goto(f"{server.url}/{page.evaluate('location.hash').split('/m/')[0]}/m/5000")
    expect(page.locator(".message.highlight")).to_have_attribute("data-seq", "5000")
    assert log.locator(".rows:not(.extra) > li").count() <= 120


def test_page_weight_and_time_to_a_usable_list(people, server):
    lee = people("lee").sign_up()
    page = lee.page
    page.goto(f"{server.url}/")
    page.get_by_role("navigation", name="Conversations").wait_for()
    page.locator(".conversation-list").wait_for()
    timings = page.evaluate("""() => {
        const navigation = performance.getEntriesByType('navigation')[0];
        const resources = performance.getEntriesByType('resource').filter(r => r.name.includes('/assets/'));
        return { page: navigation.decodedBodySize, assets: resources.reduce((n, r) => n + r.decodedBodySize, 0),
                 files: resources.length, usable: performance.now() };
    }""")
    total = timings["page"] + timings["assets"]
    print(f"\nweb client: first load {total / 1024:.1f} KB uncompressed ({timings['files']} assets + the page); "
          f"navigation → conversation list usable {timings['usable']:.0f} ms")
    with open(os.path.join(SCREENSHOTS, "..", "web-figures.json"), "w") as f:
        json.dump({"bytes": total, "files": timings["files"], "usable_ms": timings["usable"]}, f)
    assert total <= 150 * 1024, f"the first load is {total} bytes"


def test_narrow_screens_and_dark_theme(people, server):
    mia = people("mia", viewport={"width": 390, "height": 800}, color_scheme="dark").sign_up()
    page = mia.page
    mia.screenshot("phone-list")
    start_direct(mia, "ann")
    send(mia, "from a phone")
    expect(messages(mia)).to_contain_text("from a phone")
    # One column: the list is hidden while a conversation is open; Back returns to it.
    expect(page.get_by_role("navigation", name="Conversations")).to_be_hidden()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 255, 255)", "the dark theme follows the system"
    mia.screenshot("phone-conversation")
    page.get_by_role("link", name="Back to conversations").click()
    expect(page.get_by_role("navigation", name="Conversations")).to_be_visible()
