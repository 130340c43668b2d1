"""The dashboard of a stack whose reads are on a Cognito user pool (what ``make deploy``
makes by default): its config.js names the pool, the page asks for a sign-in, walks an
administrator-created user through choosing a password, reads with the ID token, says why a
wrong password fails, and signs out. The local stack's API verifies the tokens against the
emulator's user pool as API Gateway's authorizer does (a made-up token gets 401)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from localdev.harness import LoopbackStackHandle, start_loopback_stack

USER, FIRST_PASSWORD, OWN_PASSWORD = "analyst@example.com", "Temporary-Passw0rd", "Own-Passw0rd-123"


@pytest.fixture(scope="module")
def cognito_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStackHandle]:
    handle = start_loopback_stack(
        tmp_path_factory.mktemp("cognito-stack"), {"CLICKSTREAM_READ_AUTH": "cognito"}
    )
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def pool(cognito_stack: LoopbackStackHandle) -> dict[str, str]:
    resources = cognito_stack.resources
    pool_id = resources["UserPoolArn"].rsplit("/", 1)[-1]
    cognito = cognito_stack.client("cognito-idp")
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=USER,
        TemporaryPassword=FIRST_PASSWORD,
        MessageAction="SUPPRESS",
    )
    return {"pool_id": pool_id, "client_id": resources["UserPoolClientId"]}


def post_one_event(stack: LoopbackStackHandle) -> str:
    body = stack.post_events(
        [{"event_type": "page_view", "session_id": "sign-in-s1", "page": "/pricing"}]
    )
    assert body["_status"] == 200, body
    return str(body["event_ids"][0])


def sign_in(page: Any, password: str) -> None:
    page.get_by_test_id("sign-in-username").fill(USER)
    page.get_by_test_id("sign-in-password").fill(password)
    page.get_by_test_id("sign-in-submit").click()


def test_reads_refuse_a_made_up_token(cognito_stack: LoopbackStackHandle, pool: dict[str, str]):
    claims = {"sub": "x", "cognito:username": USER, "token_use": "id", "exp": 4102444800}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    forged = f"eyJhbGciOiJSUzI1NiJ9.{payload}.c2lnbmF0dXJl"
    for headers in ({"Authorization": forged}, {}):
        headers["Origin"] = cognito_stack.web_url
        response = requests.get(f"{cognito_stack.api_url}/stats", headers=headers, timeout=10)
        assert response.status_code == 401, response.text
        # as API Gateway's own errors after make deploy: a browser can read the 401
        assert response.headers["Access-Control-Allow-Origin"] in (cognito_stack.web_url, "*")
    # the read key of an apikey stack means nothing here either
    response = requests.get(
        f"{cognito_stack.api_url}/stats", headers=cognito_stack.read_headers, timeout=10
    )
    assert response.status_code == 401


def test_sign_in_choose_password_read_and_sign_out(
    page: Any, cognito_stack: LoopbackStackHandle, pool: dict[str, str], screenshots: Any
) -> None:
    event_id = post_one_event(cognito_stack)
    page.goto(f"{cognito_stack.web_url}/")
    form = page.get_by_test_id("sign-in")
    form.wait_for(state="visible")
    assert page.locator("main").is_hidden()

    sign_in(page, "Wrong-Passw0rd-1")
    page.get_by_test_id("sign-in-error").filter(has_text="Wrong e-mail or password.").wait_for()

    sign_in(page, FIRST_PASSWORD)  # an administrator-created user: choose a password first
    page.get_by_test_id("new-password-row").wait_for(state="visible")
    page.screenshot(path=str(screenshots / "sign-in-new-password.png"))
    page.get_by_test_id("sign-in-new-password").fill(OWN_PASSWORD)
    page.get_by_test_id("sign-in-submit").click()

    page.wait_for_function("document.documentElement.dataset.lastRefresh === 'ok'", timeout=30_000)
    assert form.is_hidden() and page.locator("main").is_visible()
    assert page.get_by_test_id("account-name").text_content() == USER
    page.wait_for_function(
        "id => [...document.querySelectorAll('[data-testid=feed-item]')]"
        ".some(item => item.dataset.eventId === id)",
        arg=event_id,
        timeout=30_000,
    )
    assert int(page.get_by_test_id("card-total-events").get_attribute("data-value")) >= 1
    token = page.evaluate("JSON.parse(sessionStorage.getItem('clickstream.session')).idToken")
    response = requests.get(
        f"{cognito_stack.api_url}/stats", headers={"Authorization": token}, timeout=10
    )
    assert response.status_code == 200  # the page's token is one the API accepts
    page.screenshot(path=str(screenshots / "signed-in.png"))

    page.get_by_test_id("sign-out").click()
    form.wait_for(state="visible")
    assert page.evaluate("sessionStorage.getItem('clickstream.session')") is None
    assert page.get_by_test_id("card-total-events").get_attribute("data-value") in ("", None)

    sign_in(page, OWN_PASSWORD)  # the password chosen above now signs straight in
    page.wait_for_function("document.documentElement.dataset.lastRefresh === 'ok'", timeout=30_000)

    # A token about to expire is renewed with the refresh token; a refused refresh signs out.
    renewal = page.evaluate(RENEW_JS)
    assert renewal["renewed"] and renewal["renewed"] != renewal["before"]
    assert renewal["stored"] == renewal["renewed"]
    response = requests.get(
        f"{cognito_stack.api_url}/stats", headers={"Authorization": renewal["renewed"]}, timeout=10
    )
    assert response.status_code == 200
    assert renewal["afterBadRefresh"] is None and renewal["storedAfterBadRefresh"] is None
    assert page.js_errors == []


RENEW_JS = """async () => {
  const { CognitoSession } = await import("./auth.js");
  const settings = (await import("./config.js")).default.auth.cognito;
  const session = new CognitoSession(settings);
  const before = session.load();
  const renewed = await session.idToken(before.expiresAt);  // within the renewal margin
  const stored = session.load().idToken;
  session.storage.setItem("clickstream.session", JSON.stringify(
    { ...session.load(), refreshToken: "revoked", expiresAt: 0 }));
  const afterBadRefresh = await session.idToken();
  return { before: before.idToken, renewed, stored, afterBadRefresh,
           storedAfterBadRefresh: session.load() };
}"""
