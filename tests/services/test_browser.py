"""The UI in headless Chromium (Playwright with the system Chromium): register, book, see the
booking in "my bookings", upload an ID proof and see the generated ticket appear, check the page; a
screenshot goes to test-artifacts/.

The ticket is generated the way the local stack does it: the bucket's ObjectCreated notification
goes to an SQS queue on moto, and the local invoker calls the real ticket-generator handler.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import uuid
from pathlib import Path

import pytest
import requests

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")


@pytest.fixture
def ticket_generator(services, moto, monkeypatch):
    """The ticket-generator Lambda wired to the test bucket through S3 -> SQS -> local invoker."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambda"))
    from ticket_generator import handler as handler_mod
    from ticket_generator.local_invoker import LocalInvoker

    for key, value in {"AWS_ENDPOINT_URL": moto.endpoint_url, "AWS_REGION": moto.region,
                       "AWS_DEFAULT_REGION": moto.region, "AWS_ACCESS_KEY_ID": moto.access_key_id,
                       "AWS_SECRET_ACCESS_KEY": moto.secret_access_key}.items():
        monkeypatch.setenv(key, value)
    handler_mod.reset_clients()
    invoker = LocalInvoker(services.tickets_bucket, f"test-ticket-events-{uuid.uuid4().hex[:8]}", wait_seconds=1)
    invoker.setup()
    thread = threading.Thread(target=invoker.run, daemon=True)
    thread.start()
    yield invoker
    invoker.stop()
    thread.join(10)
    handler_mod.reset_clients()


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.set_default_timeout(15_000)
        try:
            yield page, errors
        finally:
            context.close()
            browser.close()


def test_register_book_upload_in_the_browser(services, make_event, browser_page, tmp_path, moto, ticket_generator):
    from playwright.sync_api import expect

    page, errors = browser_page
    event_id = make_event(tickets=40, capacity=200, price=64.0, venue="Playwright Arena", days=1)
    ARTIFACTS.mkdir(exist_ok=True)

    page.goto(services.gateway + "/")
    expect(page).to_have_title(re.compile("TicketPlatform"))
    card = page.locator(f'.card[data-event-id="{event_id}"]')
    expect(card).to_be_visible()
    expect(card).to_contain_text("Playwright Arena")
    expect(card).to_contain_text("40 left")
    expect(page.locator(".card").first).to_be_visible()
    assert page.locator(".card").count() >= 12  # the seeded catalog
    # live health badges: every service up
    for name in ("user-service", "event-catalog", "booking-service", "s3"):
        expect(page.locator(f'#health .badge.up[data-service="{name}"]')).to_be_visible()

    # Book before registering: the UI asks for an account first.
    card.locator(".book-btn").click()
    expect(page.locator("#toasts")).to_contain_text("Create an account first")

    # Register
    email = f"pw-{uuid.uuid4().hex[:8]}@example.com"
    page.fill("#reg-name", "Playwright Tester")
    page.fill("#reg-email", email)
    page.click("#register-btn")
    expect(page.locator("#account-name")).to_have_text("Playwright Tester")
    expect(page.locator("#account-chip")).to_contain_text("Playwright")
    user = page.evaluate("JSON.parse(localStorage.getItem('ticketplatform.user'))")
    assert user["email"] == email and uuid.UUID(user["user_id"])

    # Book 3 tickets
    card.locator(".qty").select_option("3")
    card.locator(".book-btn").click()
    expect(page.locator("#toasts")).to_contain_text("Booked 3 ×")
    booking_item = page.locator("#booking-list .booking-item")
    expect(booking_item).to_have_count(1)
    expect(booking_item.first).to_contain_text("3 tickets")
    expect(booking_item.first).to_contain_text("Playwright Arena")
    expect(page.locator(f'.card[data-event-id="{event_id}"]')).to_contain_text("37 left")
    booking_id = booking_item.first.get_attribute("data-booking-id")
    mine = requests.get(f"{services.gateway}/api/users/{user['user_id']}/bookings", timeout=10).json()
    assert [b["booking_id"] for b in mine] == [booking_id]

    # The booking survives a reload (user remembered in localStorage)
    page.reload()
    expect(page.locator("#account-name")).to_have_text("Playwright Tester")
    expect(page.locator("#booking-list .booking-item")).to_have_count(1)

    # Upload an ID proof for that booking
    proof = tmp_path / "passport-scan.png"
    proof.write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                    "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"))
    page.set_input_files("#upload-file", str(proof))
    expect(page.locator("#dz-text")).to_contain_text("passport-scan.png")
    page.select_option("#upload-booking", booking_id)
    page.click("#upload-btn")
    expect(page.locator("#toasts")).to_contain_text("ID proof uploaded")
    upload_item = page.locator("#upload-list .upload-item")
    expect(upload_item).to_have_count(1)
    expect(upload_item.first).to_contain_text("passport-scan.png")
    upload_id = upload_item.first.get_attribute("data-upload-id")
    # The generated ticket appears by itself (the page polls /api/tickets).
    ticket_item = page.locator("#ticket-list .ticket-item")
    expect(ticket_item).to_have_count(1, timeout=30_000)
    expect(ticket_item.first).to_contain_text("passport-scan")
    expect(upload_item.first).to_contain_text("ticket ready")
    s3 = moto.client("s3")
    key = f"uploads/{user['user_id']}/{upload_id}-passport-scan.png"
    head = s3.head_object(Bucket=services.tickets_bucket, Key=key)
    assert head["Metadata"]["booking-id"] == booking_id and head["ContentLength"] == proof.stat().st_size

    expect(page.locator("#analytics-list")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "ui-booking-flow.png"))
    page.screenshot(path=str(ARTIFACTS / "ui-booking-flow-full.png"), full_page=True)
    assert not [e for e in errors if "favicon" not in e], errors
