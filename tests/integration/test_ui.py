"""The dashboard in a real browser: Debian's chromium, driven headlessly by Playwright, over HTTPS.

One server (``ssl_pem = *``, a self-signed certificate) and one browser for the module; the tests
run in order, as one user's story: sign in, submit, list, details, log, downloads, the oversize
refusal, the upgrade, then what must be refused (a forged form, another user's job). Playwright
cannot download its own browsers here; ``scripts/services/chromium-up.sh`` installs Debian's and
the tests point Playwright at it. ``LWR_UI_SCREENSHOTS=1`` rewrites docs/_static/ui/*.png.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import require_service
from tests.integration.server import REPO, LwrServer, free_port, write_server_ini

pytestmark = [pytest.mark.integration, pytest.mark.browser]


ADMIN = "admin-token"
CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO / "docs" / "_static" / "ui"
TOOLS = (
    "\n    show = cat $input"
    "\n    shout = tr a-z A-Z < $input > $outputs/shout.txt && echo done && echo note >&2"
)
#: a name a shell would split and a content a browser would run, were either not handled
NAME = "it's a <b>file.txt"
CONTENT = b"<script>document.title='owned'</script>\nhello & goodbye\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LwrServer]:
    directory = tmp_path_factory.mktemp("ui")
    port = free_port()
    write_server_ini(
        directory,
        port,
        {"private_token": ADMIN, "ssl_pem": "*", "ui_tools": TOOLS},
    )
    server = LwrServer(directory, port, scheme="https").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tokens(server: LwrServer) -> dict[str, str]:
    """Two users on the default plan (free), made over the admin route."""
    made = {}
    for name in ("alice", "bob"):
        status, answer = server.request("POST", "users", {"name": name, "private_token": ADMIN})
        assert status == 200, answer
        made[name] = answer["token"]
    return made


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_service(Path(CHROMIUM).exists(), "chromium (scripts/services/chromium-up.sh)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def alice(browser: Browser, server: LwrServer) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, base_url=server.url.rstrip("/"))
    page = context.new_page()
    yield page
    context.close()


def shot(page: Page, name: str) -> None:
    """A screenshot for the docs, only when asked (the committed set stays stable otherwise)."""
    if os.environ.get("LWR_UI_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, token: str) -> None:
    page.goto("/ui/sign-in")
    page.fill("#token", token)
    page.click("#sign-in")


def wait_final(page: Page) -> str:
    """Reload the job's page until its state is final (polling, no fixed sleep)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = page.inner_text("#job-state")
        if state in ("complete", "failed", "cancelled", "lost"):
            return state
        time.sleep(0.3)
        page.reload()
    raise AssertionError(f"the job did not finish: {page.content()}")


def submit(page: Page, tool: str, file: Path) -> None:
    page.goto("/ui/submit")
    page.select_option("#tool", tool)
    page.set_input_files("#file", str(file))
    page.click("#submit")


def test_pages_redirect_to_sign_in_until_signed_in(alice: Page, tokens: dict[str, str]) -> None:
    alice.goto("/ui/jobs?state=complete")
    assert re.search(r"/ui/sign-in\?next=", alice.url)
    shot(alice, "sign-in")
    alice.fill("#token", "lwr_not-a-token")
    alice.click("#sign-in")
    expect(alice.locator("#error")).to_contain_text("not valid")
    assert alice.locator("h1").inner_text() == "Error 403"
    sign_in(alice, tokens["alice"])
    assert alice.url.endswith("/ui/jobs")
    expect(alice.locator("#who")).to_have_text("alice")
    expect(alice.locator("#no-jobs")).to_be_visible()


def test_session_cookie_is_secure_httponly_lax(alice: Page) -> None:
    answer = alice.request.get("/ui/profile")
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    cookies = {c["name"]: c for c in alice.context.cookies()}
    session = cookies["lwr_session"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"


def test_submit_shows_details_log_and_downloads(alice: Page, tmp_path: Path) -> None:
    upload = tmp_path / NAME
    upload.write_bytes(CONTENT)
    shot_form = alice.goto("/ui/submit")
    assert shot_form is not None and shot_form.status == 200
    shot(alice, "submit")
    submit(alice, "show", upload)
    assert re.search(r"/ui/jobs/ui-[0-9a-f]+$", alice.url)
    assert wait_final(alice) == "complete"
    assert alice.title() != "owned"  # the job's output was shown as text, never run
    assert alice.inner_text("#stdout") == CONTENT.decode()
    assert alice.locator("#stdout script").count() == 0
    assert "UTC (" in alice.inner_text("#details")  # a readable time, and how long ago
    shot(alice, "job")
    with alice.expect_download() as download:
        alice.locator("#inputs a", has_text=NAME).click()
    assert Path(download.value.path()).read_bytes() == CONTENT
    suggested = download.value.suggested_filename  # chromium itself replaces < and >
    assert suggested.startswith("it's a ") and suggested.endswith("file.txt")


def test_results_are_listed_and_downloadable(alice: Page, tmp_path: Path) -> None:
    upload = tmp_path / "words.txt"
    upload.write_bytes(b"quiet words\n")
    submit(alice, "shout", upload)
    assert wait_final(alice) == "complete"
    assert alice.inner_text("#stdout") == "done\n"
    assert alice.inner_text("#stderr").startswith("note")
    with alice.expect_download() as download:
        alice.click("#results a:text-is('shout.txt')")
    assert Path(download.value.path()).read_bytes() == b"QUIET WORDS\n"


def test_list_pages_and_filters(alice: Page) -> None:
    alice.goto("/ui/jobs")
    rows = alice.locator("#jobs tr.job")
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".state")).to_have_text("complete")
    expect(rows.first).to_contain_text("words.txt")  # newest first
    shot(alice, "jobs")
    alice.select_option("#state-filter", "failed")
    alice.click("#filter")
    expect(alice.locator("#no-jobs")).to_contain_text("failed")
    alice.goto("/ui/jobs?state=complete")
    expect(alice.locator("#jobs tr.job")).to_have_count(2)


@pytest.mark.parametrize("size", [152_000, 200_000])
def test_oversize_upload_is_refused_with_upgrade_link(
    alice: Page, tmp_path: Path, size: int
) -> None:
    """152 KB passes the form's size check and is refused by the upload route itself (its exact
    size named); 200 KB is refused from the form's Content-Length before the form is read (the
    size named is the body's less the form allowance, lwr.ui.submit.FORM_OVERHEAD)."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * size)
    submit(alice, "show", big)
    assert alice.locator("h1").inner_text() == "Error 413"
    expect(alice.locator("#who")).to_have_text("alice")
    expect(alice.locator("#error")).to_contain_text("max_input_size")
    expect(alice.locator("#error")).to_contain_text("plan 'free'")
    exact = f"upload of {size} bytes"
    if size == 152_000:
        expect(alice.locator("#error")).to_contain_text(exact)
    else:
        expect(alice.locator("#error")).to_contain_text("upload of at least ")
    expect(alice.locator("#upgrade-link")).to_have_text("upgrade to premium")
    if size == 200_000:
        shot(alice, "refused")
    alice.goto("/ui/jobs")
    expect(alice.locator("#jobs tr.job")).to_have_count(2)  # the refused job left nothing


def test_upgrade_then_the_same_upload_passes(alice: Page, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"y" * 200_000)
    submit(alice, "show", big)
    alice.click("#upgrade-link")
    assert alice.url.endswith("/ui/profile#plans")
    expect(alice.locator("#current-plan")).to_have_text("free")
    shot(alice, "profile")
    alice.click("#choose-premium")
    expect(alice.locator("#current-plan")).to_have_text("premium")
    submit(alice, "show", big)
    assert wait_final(alice) == "complete"
    expect(alice.locator("#inputs")).to_contain_text("big.bin (200.0 KB)")


def test_forms_without_the_csrf_token_are_refused(alice: Page) -> None:
    """A forged POST carries the cookie (same browser) but not the token: 403, nothing changes."""
    forms: list[dict[str, str | float | bool]] = [
        {"plan": "free"},
        {"plan": "free", "csrf_token": "forged"},
    ]
    for form in forms:
        answer = alice.request.post("/ui/profile/plan", form=form, max_redirects=0)
        assert answer.status == 403
        assert "security token" in answer.text()
        assert "Traceback" not in answer.text()
    alice.goto("/ui/profile")
    expect(alice.locator("#current-plan")).to_have_text("premium")


def test_another_users_job_is_not_found(
    alice: Page, browser: Browser, server: LwrServer, tokens: dict[str, str]
) -> None:
    alice.goto("/ui/jobs")
    href = alice.locator("#jobs tr.job a").first.get_attribute("href")
    assert href is not None
    other: BrowserContext = browser.new_context(
        ignore_https_errors=True, base_url=server.url.rstrip("/")
    )
    try:
        bob = other.new_page()
        sign_in(bob, tokens["bob"])
        answer = bob.goto(href)
        assert answer is not None and answer.status == 404
        answer = bob.goto(f"{href}&owner=alice")  # naming the owner is the admin's alone
        assert answer is not None and answer.status == 404
        download = bob.request.get(href.replace("?", "/files?") + "&type=input&name=big.bin")
        assert download.status == 404
        bob.goto("/ui/sign-in")  # signed in already: the form is skipped
        assert bob.url.endswith("/ui/jobs")
        bob.click("#sign-out")
        sign_in(bob, ADMIN)
        expect(bob.locator("#jobs tr.job").first).to_contain_text("alice")  # every user's jobs
        bob.locator("#jobs tr.job a").first.click()
        expect(bob.locator("#details")).to_contain_text("alice")
        assert "owner=alice" in bob.url
    finally:
        other.close()


def test_sign_out_ends_the_session(alice: Page) -> None:
    old = {c["name"]: c["value"] for c in alice.context.cookies()}["lwr_session"]
    alice.goto("/ui/jobs")
    alice.click("#sign-out")
    assert "/ui/sign-in" in alice.url
    answer = alice.request.get(
        "/ui/jobs", headers={"Cookie": f"lwr_session={old}"}, max_redirects=0
    )
    assert answer.status == 303 and "/ui/sign-in" in answer.headers["location"]
