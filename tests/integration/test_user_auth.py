"""user_auth end to end: LWR as a user starts it, Galaxy's client, a JWKS and a token endpoint.

The identity provider and Galaxy's token endpoint are a real HTTP server on loopback
(``tests.integration.identity``); tokens are signed with PyJWT. A refused job must answer 403
with the reason (in the JSON body, and in the status line Galaxy's client reports), end
``failed`` with that reason, and never show the token or the job key, in answers or in the log.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ServerFactory, run_check
from tests.integration.files_endpoint import wait_for
from tests.integration.identity import (
    JOB_KEY,
    USERLIST,
    IdentityProvider,
    new_key,
    user_auth_yaml,
)
from tests.integration.server import LwrServer, free_port, write_server_ini

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def server(idp: IdentityProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LwrServer]:
    """One server for the module: oidc + userlist, from a YAML file named in server.ini."""
    directory = tmp_path_factory.mktemp("user_auth_server")
    (directory / "user_auth.yml").write_text(user_auth_yaml(idp, USERLIST))
    port = free_port()
    write_server_ini(directory, port, {"user_auth": "user_auth.yml", "private_token": "pt"})
    lwr = LwrServer(directory, port).start()
    yield lwr
    lwr.stop()


def galaxy_client(url: str, job_id: str, **destination: Any) -> Any:
    from pulsar.client.manager import build_client_manager

    params = {"url": url, "private_token": "pt", **destination}
    return build_client_manager().get_client(params, job_id)


def launch(url: str, job_id: str, token_endpoint: str | None) -> Any:
    """Set up and submit ``job_id`` as Galaxy's REST client does, with its token endpoint."""
    client = galaxy_client(url, job_id)
    client.setup("cat1", "1.0")
    client.launch("echo hello", token_endpoint=token_endpoint)
    return client


def raw_submit(url: str, job_id: str, token_endpoint: str) -> tuple[int, str, dict[str, Any]]:
    """Setup + submit over plain HTTP: (status, reason phrase, JSON body) of the submit."""
    base = url.rstrip("/")
    setup = urllib.parse.urlencode({"job_id": job_id, "private_token": "pt"})
    urllib.request.urlopen(urllib.request.Request(f"{base}/jobs?{setup}", method="POST"))
    query = urllib.parse.urlencode(
        {
            "command_line": "echo hi",
            "private_token": "pt",
            "token_endpoint": json.dumps({"token_endpoint": token_endpoint}),
        }
    )
    request = urllib.request.Request(f"{base}/jobs/{job_id}/submit?{query}", method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.reason, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.reason, json.loads(exc.read())


def status(url: str, job_id: str) -> dict[str, Any]:
    query = urllib.parse.urlencode({"private_token": "pt"})
    with urllib.request.urlopen(f"{url.rstrip('/')}/jobs/{job_id}/status?{query}") as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


#: name -> (token factory, reason code, words of the message)
BAD_TOKENS: dict[str, tuple[Callable[[IdentityProvider], str], str, str]] = {
    "expired": (lambda p: p.token(lifetime=-120), "expired", "has expired"),
    "wrong_audience": (lambda p: p.token(audience="other"), "audience", "another audience"),
    "wrong_issuer": (lambda p: p.token(issuer="https://evil.test"), "issuer", "another issuer"),
    "wrong_key": (lambda p: p.token(key=new_key()), "signature", "does not verify"),
    "unknown_kid": (lambda p: p.token(key=new_key(), kid="k9"), "signature", "not in the"),
    "unlisted_user": (lambda p: p.token("mallory"), "user_not_allowed", "'mallory' is not"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_refused_tokens(case: str, idp: IdentityProvider, server: LwrServer) -> None:
    from pulsar.client.exceptions import PulsarClientTransportError

    make, reason, words = BAD_TOKENS[case]
    token = make(idp)
    job_id = f"refused-{case}"
    idp.tokens[job_id] = token
    with pytest.raises(PulsarClientTransportError) as caught:
        launch(server.url, job_id, idp.token_endpoint(job_id))
    # what Galaxy would show the user: the code and the reason phrase
    assert caught.value.transport_code == 403
    assert words in str(caught.value.message)
    final = status(server.url, job_id)
    assert final["status"] == "failed" and final["complete"] == "true"
    assert words in final["reason"]

    raw_id = f"raw-{case}"
    idp.tokens[raw_id] = token
    code, phrase, body = raw_submit(server.url, raw_id, idp.token_endpoint(raw_id))
    assert (code, body["reason"]) == (403, reason)
    assert phrase.startswith("Forbidden: ") and words in phrase
    for text in (json.dumps(body), phrase, json.dumps(final), server.log()):
        assert token not in text
        assert JOB_KEY not in text


def test_valid_token_runs_galaxys_full_scenario(
    idp: IdentityProvider, server: LwrServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pulsar.client's whole check job (staging up and down) with Galaxy's token endpoint."""
    from pulsar.client.test import check

    job_id = "valid-alice"
    token = idp.token("alice")
    idp.tokens[job_id] = token
    monkeypatch.setattr(
        check,
        "extract_client_options",
        _with_token_endpoint(check.extract_client_options, idp.token_endpoint(job_id)),
    )
    asked = idp.count(f"/api/jobs/{job_id}/oidc-tokens")
    run_check(server.url, job_id=job_id, private_token="pt")
    assert idp.count(f"/api/jobs/{job_id}/oidc-tokens") == asked + 1
    log = server.log()
    assert f"job _default_/{job_id}: submitted by alice (user_auth oidc)" in log
    assert f"job _default_/{job_id}: finished complete" in log
    assert token not in log and JOB_KEY not in log


def _with_token_endpoint(original: Callable[..., dict[str, Any]], endpoint: str) -> Any:
    """check.py's client options plus ``token_endpoint``, as Galaxy's runner passes it."""

    @functools.wraps(original)
    def wrapped(options: Any) -> dict[str, Any]:
        return {**original(options), "token_endpoint": endpoint}

    return wrapped


def test_no_token_endpoint_is_refused(server: LwrServer) -> None:
    from pulsar.client.exceptions import PulsarClientTransportError

    with pytest.raises(PulsarClientTransportError) as caught:
        launch(server.url, "no-endpoint", None)
    assert caught.value.transport_code == 403
    assert "no token_endpoint" in status(server.url, "no-endpoint")["reason"]


def test_the_private_token_is_still_checked_first(idp: IdentityProvider, server: LwrServer) -> None:
    job_id = "no-private-token"
    idp.tokens[job_id] = idp.token("alice")
    asked = idp.count(f"/api/jobs/{job_id}/oidc-tokens")
    query = urllib.parse.urlencode({"command_line": "echo", "token_endpoint": "{}"})
    request = urllib.request.Request(f"{server.url}jobs/{job_id}/submit?{query}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 403
    assert json.loads(caught.value.read()) == {"error": "missing or wrong private_token"}
    assert idp.count(f"/api/jobs/{job_id}/oidc-tokens") == asked


def test_identity_services_down_give_502_naming_them(
    idp: IdentityProvider, server: LwrServer
) -> None:
    idp.tokens["galaxy-down"] = idp.token("alice")
    idp.token_status = 500
    try:
        code, phrase, body = raw_submit(
            server.url, "galaxy-down", idp.token_endpoint("galaxy-down")
        )
    finally:
        idp.token_status = None
    assert code == 502 and phrase.startswith("Bad Gateway: ")
    assert "token endpoint" in body["error"] and "HTTP 500" in body["error"]
    assert "/api/jobs/galaxy-down/oidc-tokens" in body["error"] and JOB_KEY not in body["error"]
    assert "answered HTTP 500" in status(server.url, "galaxy-down")["reason"]
    assert "Traceback" not in server.log()


def test_allow_all_runs_any_authenticated_user(
    idp: IdentityProvider, lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    """allow_all authorization: an unlisted user runs; a bad token is still refused."""
    from pulsar.client.exceptions import PulsarClientTransportError

    path = tmp_path / "allow_all.yml"
    path.write_text(user_auth_yaml(idp, "  - type: allow_all\n"))
    server = lwr_server_factory(app_options={"user_auth": str(path), "private_token": "pt"})
    idp.tokens["anyone"] = idp.token("mallory")
    client = launch(server.url, "anyone", idp.token_endpoint("anyone"))
    wait_for(lambda: client.get_status() == "complete", what="the job to complete")
    assert status(server.url, "anyone")["returncode"] == 0
    idp.tokens["anyone-expired"] = idp.token("mallory", lifetime=-120)
    with pytest.raises(PulsarClientTransportError):
        launch(server.url, "anyone-expired", idp.token_endpoint("anyone-expired"))


def test_a_bad_user_auth_file_stops_the_start(
    lwr_server_factory: ServerFactory, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("authentication:\n  - type: odic\n")
    server = lwr_server_factory(app_options={"user_auth": str(path)}, start=False)
    with pytest.raises(RuntimeError):
        server.start(timeout=20)
    assert "did you mean 'oidc'?" in server.log()
