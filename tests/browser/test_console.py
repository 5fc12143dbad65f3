"""The admin console, as an admin and as a non-admin see it, in headless Chromium.

The world is arranged once for the module, as the product makes it: the seeded sign-in
accounts, twelve listings submitted by an unverified agent and reviewed by the real
submission trigger (in-process), two open reports, and a day of one function's metrics.
Every action goes from the page through the Functions emulator's real callables; what
they changed is read back from Firestore. The tests run in order, in one browser: the
admin stays signed in from the queue's test on.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from google.cloud import firestore
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from api.listings import on_listing_updated
from firekit import bootstrap, metrics
from pytest_firebase.auth import AuthEmulator
from pytest_firebase.callables import CallResult
from pytest_firebase.events import deliver, firestore_event
from pytest_firebase.plugin import reset_firestore
from pytest_firebase.rest import FirestoreRest
from pytest_firebase.stack import EmulatorStack
from seed import photos
from seed.accounts import SeedUser, load_users
from tests.listings.factories import listing, submit

from .conftest import Screenshot

PAGE_SIZE = 10  # console/src/workqueue.ts
WAITING = 12
UI_WAIT_S = 20
CALL_WAIT_S = 90  # a callable's first call starts its Python worker (seconds on 2 cores)
STREETS = ("Elm Row", "Quay Street", "Mill Lane", "Park Terrace", "Orchard Close", "Bank Side")
KINDS = ("house", "flat", "bungalow")
AREAS = (("Leeds", "LS1 {n}AB"), ("Bristol", "BS1 {n}QD"), ("York", "YO1 {n}EX"))


@dataclass(frozen=True)
class World:
    accounts: dict[str, SeedUser]
    """The seeded sign-in accounts, by uid (seed/users.json)."""
    waiting: list[str]
    """The listings waiting for review, oldest first."""
    reports: list[str]
    """The open reports, oldest first."""
    metrics: dict[str, metrics.Tally]
    """stripe_webhook's counts over the last hour and the last day."""


def _submitted(db: firestore.Client, n: int, created: dt.datetime) -> str:
    """The ``n``-th listing, submitted (``pending_review``) and reviewed by the trigger."""
    city, postcode = AREAS[n % len(AREAS)]
    data = listing(
        "seed-agent-2",  # unverified: the trigger queues their listings for an admin
        title=f"{2 + n % 3} bed {KINDS[n % 3]} on {STREETS[n % 6]}",
        propertyType=KINDS[n % 3],
        bedrooms=2 + n % 3,
        price={"amount": (210_000 + 15_000 * n) * 100, "currency": "GBP"},
        address={
            "line1": f"{n + 1} {STREETS[n % 6]}",
            "line2": None,
            "city": city,
            "postcode": postcode.format(n=n % 9 + 1),
            "country": "GB",
        },
        photos=[photos.entry((n + k) % photos.POOL_SIZE) for k in range(2 + n % 3)],
        createdAt=created,
        updatedAt=created,
    )
    listing_id, event = submit(db, firestore_event, data, listing_id=f"queued-{n:02d}")
    deliver(on_listing_updated, event)
    return str(listing_id)


def _report(db: firestore.Client, n: int, listing_id: str, created: dt.datetime) -> str:
    buyer = ("seed-buyer", "seed-renter")[n % 2]
    report_id = f"report-{n}"
    db.document(f"reports/{report_id}").set(
        {
            "reporterId": "seed-agent-2",
            "conversationId": f"{listing_id}__{buyer}",
            "messageId": f"message-{n}",
            "reason": ("spam", "harassment")[n % 2],
            "note": ("Sends the same link to every listing.", "Rude after a viewing.")[n % 2],
            "createdAt": created,
            "status": "open",
            "reportedUid": buyer,
            "listingId": listing_id,
            "excerpt": ("Cheap loans at example.com!", "You are wasting my time.")[n % 2],
        }
    )
    return report_id


RECENT_MS = (3, 4, 11, 12, 12, 13, 14, 15, 16, 17, 18, 19, 60, 70, 80, 90, 95, 99, 700, 75_000)
"""stripe_webhook's latencies in the current five minutes (the slowest one failed)."""
EARLIER_MS = (3,) * 80
"""And two hours before: in the last day, not in the last hour."""


def _metrics(now: dt.datetime) -> dict[str, metrics.Tally]:
    """A day of stripe_webhook (which nothing in these tests calls, so no real flush adds
    to it), counted and flushed by the functions' own aggregator; its tallies for the last
    hour and the last day."""
    aggregator = metrics.Aggregator(autoflush=False)
    clock = now.timestamp()
    for at, latencies in ((clock, RECENT_MS), (clock - 7200, EARLIER_MS)):
        for ms in latencies:
            failed = ms == max(RECENT_MS)
            outcome = "error" if failed else "ok"
            aggregator.record("stripe_webhook", outcome, not failed, ms, at=at)
    recent, earlier = (
        aggregator.pending()[metrics.FIVE_MINUTES.start(at)]["stripe_webhook"]
        for at in (clock, clock - 7200)
    )
    day = metrics.Tally(recent.buckets)
    for tally in (recent, earlier):
        day.add(tally)
    assert aggregator.flush()
    return {"hour": recent, "day": day}


@pytest.fixture(scope="module")
def world(firebase_stack: EmulatorStack) -> World:
    reset_firestore(firebase_stack)
    AuthEmulator(firebase_stack.host("auth"), firebase_stack.config.project_id).reset()
    accounts = {user.uid: user for user in load_users()}
    db = bootstrap.db()
    photos.store_pool()
    now = dt.datetime.now(dt.UTC)
    waiting = [_submitted(db, n, now - dt.timedelta(days=20 - n)) for n in range(WAITING)]
    reports = [_report(db, n, waiting[-1], now - dt.timedelta(hours=5 - n)) for n in range(2)]
    return World(accounts, waiting, reports, _metrics(now))


# --- the page, as a person uses it ---------------------------------------------------------


def until(browser: WebDriver, what: str, seconds: float = UI_WAIT_S) -> Callable[..., Any]:
    """``until(browser, what)(condition)``: wait for ``condition(browser)`` to be truthy."""

    def wait(condition: Callable[[WebDriver], Any]) -> Any:
        try:
            return WebDriverWait(browser, seconds, poll_frequency=0.1).until(condition)
        except TimeoutException:
            alerts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "[role=alert]")]
            pytest.fail(f"waited {seconds} s for {what}; the page's alerts: {alerts}")

    return wait


def shown(browser: WebDriver, css: str) -> WebElement | None:
    found = browser.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def sign_in(browser: WebDriver, url: str, user: SeedUser) -> None:
    browser.get(url)
    until(browser, "the console")(lambda b: shown(b, "form input[name=email], .account"))
    if shown(browser, ".account"):  # someone is signed in (the session is the browser's)
        browser.find_element(By.CSS_SELECTOR, ".account button").click()
    form = until(browser, "the sign-in form")(lambda b: shown(b, "form input[name=email]"))
    form.send_keys(user.email)
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(user.password)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    until(browser, f"{user.email} signed in")(lambda b: shown(b, ".account"))


def open_page(browser: WebDriver, name: str) -> WebElement:
    browser.find_element(By.CSS_SELECTOR, f"nav a[data-page={name}]").click()
    section = until(browser, f"the {name} page")(lambda b: shown(b, f"[data-testid={name}]"))
    assert isinstance(section, WebElement)
    return section


def card(browser: WebDriver, item_id: str) -> WebElement:
    found = until(browser, f"the card of {item_id}")(lambda b: shown(b, f"[data-id='{item_id}']"))
    assert isinstance(found, WebElement)
    return found


def status_of(browser: WebDriver, item_id: str, expected: str) -> str:
    """The status the card of ``item_id`` shows, once it is ``expected`` (or the wait fails)."""
    css = f"[data-id='{item_id}'] .status[data-status='{expected}']"
    until(browser, f"{item_id} shown as {expected}", CALL_WAIT_S)(lambda b: shown(b, css))
    return str(card(browser, item_id).find_element(By.CSS_SELECTOR, ".status").text)


def audit_row(browser: WebDriver, action: str, target: str) -> WebElement | None:
    """The audit log's row of ``action`` on ``target``, if shown."""
    for row in browser.find_elements(By.CSS_SELECTOR, f"tr[data-action='{action}']"):
        if row.find_element(By.CSS_SELECTOR, "[data-field=target]").text == target:
            return row
    return None


def stored(path: str) -> dict[str, Any]:
    data = bootstrap.db().document(path).get().to_dict()
    assert data is not None, f"{path} is gone"
    return data


# --- the tests -----------------------------------------------------------------------------


def test_a_non_admin_sees_the_refusal_and_no_data(
    browser: WebDriver,
    console_url: str,
    world: World,
    screenshot: Screenshot,
    firebase_stack: EmulatorStack,
) -> None:
    browser.get(console_url)
    until(browser, "the sign-in form")(lambda b: shown(b, "form input[name=email]"))
    screenshot("sign-in")

    sign_in(browser, console_url, world.accounts["seed-buyer"])

    refusal = until(browser, "the refusal")(lambda b: shown(b, "[data-testid=refusal]"))
    assert "not as an admin" in refusal.text
    assert world.accounts["seed-buyer"].email in refusal.text
    # No page was created, so nothing was read: no navigation, no queue, no audit log.
    assert browser.find_elements(By.CSS_SELECTOR, "nav a, [data-testid=queue]") == []
    assert browser.find_elements(By.CSS_SELECTOR, "hf-queue, hf-audit, hf-reports") == []
    screenshot("refusal")

    # And the database refuses them the console's reads, with their own ID token.
    buyer = world.accounts["seed-buyer"]
    auth = AuthEmulator(firebase_stack.host("auth"), firebase_stack.config.project_id)
    token = auth.sign_in(buyer.email, buyer.password).id_token
    as_buyer = FirestoreRest(
        firebase_stack.host("firestore"), firebase_stack.config.project_id, token
    )
    reads = {
        "moderation queue": as_buyer.query(
            "listings",
            [("status", "==", "pending_review")],
            order_by=[("createdAt", "asc")],
            limit=11,
        ),
        "open reports": as_buyer.query(
            "reports", [("status", "==", "open")], order_by=[("createdAt", "asc")], limit=11
        ),
        "audit log": as_buyer.query("auditLog", order_by=[("at", "desc")], limit=50),
        "metrics": as_buyer.get(f"_metrics/{metrics.HOUR.doc_id(metrics.HOUR.start(time.time()))}"),
    }
    assert {name: read.denied for name, read in reads.items()} == dict.fromkeys(reads, True)


def test_the_queue_shows_a_page_at_a_time_oldest_first_with_photos_and_checks(
    browser: WebDriver, console_url: str, world: World, screenshot: Screenshot
) -> None:
    sign_in(browser, console_url, world.accounts["seed-admin"])
    queue = open_page(browser, "queue")

    until(browser, "the first page")(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card")) == 10)
    ids = [c.get_attribute("data-id") for c in queue.find_elements(By.CSS_SELECTOR, ".card")]
    assert ids == world.waiting[:PAGE_SIZE]  # oldest first
    assert queue.find_element(By.CSS_SELECTOR, "[data-testid=total]").text == (
        f"1–{PAGE_SIZE} of {WAITING} waiting, oldest first"
    )
    reads = queue.find_element(By.CSS_SELECTOR, "[data-testid=reads]")
    assert reads.get_attribute("data-read") == str(PAGE_SIZE + 1)  # the page and one more
    first = card(browser, world.waiting[0])
    images = first.find_elements(By.CSS_SELECTOR, ".photos img")
    assert len(images) == 2
    until(browser, "the photos loaded from the storage stand-in")(
        lambda b: all(b.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
    )
    checks = [li.text for li in first.find_elements(By.CSS_SELECTOR, ".checks li")]
    assert checks and all(text.startswith("✓") for text in checks), checks
    assert any("duplicate" in text for text in checks), checks  # the trigger's last check
    screenshot("moderation-queue")
    # Everything the page loaded (bundle, photos, the SDK's calls) came from this machine:
    # nothing from a CDN, so the console works offline.
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => e.name)"
    )
    assert loaded and {urlsplit(url).hostname for url in loaded} == {"127.0.0.1"}, loaded

    queue.find_element(By.CSS_SELECTOR, "[data-testid=next]").click()
    until(browser, "page 2")(
        lambda b: b.find_element(By.CSS_SELECTOR, "[data-testid=page-number]").text == "Page 2"
    )
    ids = [c.get_attribute("data-id") for c in queue.find_elements(By.CSS_SELECTOR, ".card")]
    assert ids == world.waiting[PAGE_SIZE:]
    assert reads_of(browser) == str(WAITING - PAGE_SIZE)
    assert not queue.find_element(By.CSS_SELECTOR, "[data-testid=next]").is_enabled()

    queue.find_element(By.CSS_SELECTOR, "[data-testid=previous]").click()
    until(browser, "page 1 again")(
        lambda b: b.find_element(By.CSS_SELECTOR, "[data-testid=page-number]").text == "Page 1"
    )
    ids = [c.get_attribute("data-id") for c in queue.find_elements(By.CSS_SELECTOR, ".card")]
    assert ids == world.waiting[:PAGE_SIZE]


def reads_of(browser: WebDriver) -> str | None:
    return browser.find_element(By.CSS_SELECTOR, "[data-testid=reads]").get_attribute("data-read")


def test_an_admin_approves_one_listing_and_rejects_another_and_sees_the_audit_rows_live(
    browser: WebDriver,
    console_url: str,
    world: World,
    screenshot: Screenshot,
    firebase_stack: EmulatorStack,
    call_emulated: Callable[..., CallResult],
) -> None:
    admin = world.accounts["seed-admin"]
    approved, rejected = world.waiting[0], world.waiting[1]
    reason = "The photos show a different house."
    queue_window = browser.current_window_handle
    # A second window on the audit log, listening, as another admin's screen would be.
    browser.switch_to.new_window("window")
    browser.get(f"{console_url}#/audit")
    # Listening: what is written from now on arrives as new rows.
    until(browser, "the audit log's first snapshot")(lambda b: shown(b, "[data-loaded]"))
    browser.execute_script("window.sameDocument = true")  # gone if the page reloads
    audit_window = browser.current_window_handle

    browser.switch_to.window(queue_window)
    card(browser, approved).find_element(By.CSS_SELECTOR, "[data-action=approve]").click()
    assert status_of(browser, approved, "active") == "active"
    card(browser, rejected).find_element(By.CSS_SELECTOR, "[data-action=reject]").click()
    card(browser, rejected).find_element(By.CSS_SELECTOR, "textarea[name=reason]").send_keys(reason)
    card(browser, rejected).find_element(By.CSS_SELECTOR, "[data-action=confirm-reject]").click()
    assert status_of(browser, rejected, "rejected") == "rejected"

    # Another admin rejects the next one (through the same callable) while this page
    # still offers to approve it: the refusal is shown with its reason.
    raced = world.waiting[2]
    other_admin = AuthEmulator(firebase_stack.host("auth"), firebase_stack.config.project_id)
    token = other_admin.sign_in(admin.email, admin.password).id_token
    assert call_emulated("reject_listing", {"listingId": raced, "reason": "Duplicate."}, token).ok
    card(browser, raced).find_element(By.CSS_SELECTOR, "[data-action=approve]").click()
    error = until(browser, "the refusal of a listing no longer waiting", CALL_WAIT_S)(
        lambda b: shown(b, f"[data-id='{raced}'] .error")
    )
    assert "failed-precondition (transition_not_allowed)" in error.text
    assert status_of(browser, raced, "rejected") == "rejected"  # as stored: no more buttons
    assert card(browser, raced).find_elements(By.CSS_SELECTOR, "[data-action=approve]") == []
    screenshot("moderation-actions")

    assert stored(f"listings/{approved}")["status"] == "active"
    assert (
        stored(f"listings/{rejected}")["status"],
        stored(f"listings/{rejected}")["rejectionReason"],
    ) == ("rejected", reason)

    browser.switch_to.window(audit_window)
    rows = {
        action: until(browser, f"the {action} row of {target}, live", CALL_WAIT_S)(
            lambda b, action=action, target=target: audit_row(b, action, target)
        )
        for action, target in (
            ("listing.approved", f"listings/{approved}"),
            ("listing.rejected", f"listings/{rejected}"),
        )
    }
    assert all("fresh" in row.get_attribute("class") for row in rows.values())  # arrived live
    assert browser.execute_script("return window.sameDocument") is True  # no reload
    for row in rows.values():
        assert world.accounts["seed-admin"].uid in row.text
    assert reason in rows["listing.rejected"].text
    screenshot("audit-log")
    browser.close()
    browser.switch_to.window(queue_window)


def test_an_admin_dismisses_a_report_and_blocks_a_reported_user(
    browser: WebDriver, world: World, screenshot: Screenshot
) -> None:
    dismissed, actioned = world.reports
    open_page(browser, "reports")
    until(browser, "both reports")(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".card")) == 2)
    screenshot("reports")

    card(browser, dismissed).find_element(By.CSS_SELECTOR, "[data-action=dismiss]").click()
    assert status_of(browser, dismissed, "dismissed") == "dismissed"
    card(browser, actioned).find_element(By.CSS_SELECTOR, "[data-action=block]").click()
    card(browser, actioned).find_element(By.CSS_SELECTOR, "textarea[name=reason]").send_keys(
        "Abuse after a viewing."
    )
    card(browser, actioned).find_element(By.CSS_SELECTOR, "[data-action=confirm-block]").click()
    assert status_of(browser, actioned, "actioned") == "actioned"

    assert stored(f"reports/{dismissed}")["status"] == "dismissed"
    assert stored(f"reports/{actioned}")["status"] == "actioned"


def test_an_admin_finds_a_user_by_email_and_sees_role_plan_and_audit(
    browser: WebDriver, world: World, screenshot: Screenshot
) -> None:
    buyer = world.accounts["seed-buyer"]  # the reports' test blocked the other buyer
    page = open_page(browser, "users")
    page.find_element(By.CSS_SELECTOR, "input[name=email]").send_keys(buyer.email)
    page.find_element(By.CSS_SELECTOR, "form.filter button").click()
    found = until(browser, "the user", CALL_WAIT_S)(lambda b: shown(b, f"[data-uid='{buyer.uid}']"))
    fields = {
        e.get_attribute("data-field"): e.text
        for e in found.find_elements(By.CSS_SELECTOR, "dd[data-field]")
    }
    assert fields == {"role": "buyer", "plan": "none", "account": "open"}

    found.find_element(By.CSS_SELECTOR, "form[data-action=disable] input[name=reason]").send_keys(
        "Chargeback fraud under investigation."
    )
    found.find_element(By.CSS_SELECTOR, "form[data-action=disable] button").click()
    until(browser, "the account suspended", CALL_WAIT_S)(
        lambda b: (
            shown(b, "dd[data-field=account]")
            and b.find_element(By.CSS_SELECTOR, "dd[data-field=account]").text == "suspended"
        )
    )
    actions = {
        r.get_attribute("data-action")
        for r in browser.find_elements(By.CSS_SELECTOR, "[data-uid] table.audit tbody tr")
    }
    assert {"user.looked_up", "user.disabled"} <= actions, actions
    assert stored(f"users/{buyer.uid}")["role"] == "buyer"
    screenshot("users")


def test_the_health_panel_shows_what_the_health_endpoint_reports(
    browser: WebDriver, console_url: str, world: World, screenshot: Screenshot
) -> None:
    # The Hosting rewrite (firebase.json) takes /health to the health function.
    answer = requests.get(f"{console_url}health", timeout=60)
    report = answer.json()
    page = open_page(browser, "health")
    status = until(browser, "the health report", CALL_WAIT_S)(lambda b: shown(b, "[data-http]"))
    assert status.get_attribute("data-http") == str(answer.status_code)
    assert status.get_attribute("data-status") == report["status"]
    rows = {
        r.get_attribute("data-check"): r
        for r in page.find_elements(By.CSS_SELECTOR, "tr[data-check]")
    }
    assert set(rows) == set(report["checks"])
    for name, check in report["checks"].items():
        assert ("ok" if check["ok"] else "failed") in rows[name].text
    screenshot("health")


def latency_cell(tally: metrics.Tally, q: float) -> str:
    """What the panel shows for ``tally``'s ``q`` quantile, by firekit.metrics.percentile:
    "N.N ms" (rounded half up, as JavaScript's toFixed does), or "> N ms" above the last
    bound."""
    value = metrics.percentile(metrics.BOUNDS, tally.latency, q)
    assert value is not None
    if q * tally.count > sum(tally.latency[:-1]):
        return f"> {value:g} ms"
    return f"{Decimal(value).quantize(Decimal('0.1'), ROUND_HALF_UP)} ms"


def test_the_metrics_panel_reads_the_windows_as_the_functions_own_code_does(
    browser: WebDriver, world: World, screenshot: Screenshot
) -> None:
    open_page(browser, "metrics")
    row = until(browser, "stripe_webhook's row")(
        lambda b: shown(b, "tr[data-function=stripe_webhook]")
    )
    cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "td[data-stat]")]
    expected = []
    for span in ("hour", "day"):
        tally = world.metrics[span]
        expected += [str(tally.count), f"{100 * tally.ok / tally.count:.1f} %"]
        expected += [latency_cell(tally, q) for q in (0.5, 0.95, 0.99)]
    assert cells == expected
    assert expected[:2] == ["20", "95.0 %"] and expected[5:7] == ["100", "99.0 %"]
    assert expected[4].startswith(">")  # the failed 75 s call: above every bound
    screenshot("metrics")
