"""The oidc plugin against a real JWKS and token endpoint on loopback (tests.integration.identity).

Each verification has a test that fails when that check is removed: expiry, audience, issuer,
signature, key id, algorithm, username template.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from lwr.auth.base import AuthRequest
from lwr.auth.oidc import OidcAuthentication
from lwr.errors import IdentityServiceError, UserAuthError
from tests.integration.identity import AUDIENCE, ISSUER, PROVIDER, IdentityProvider, new_key


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    with IdentityProvider() as provider:
        yield provider


def plugin(idp: IdentityProvider, **options: Any) -> OidcAuthentication:
    raw = {
        "oidc_jwks_url": idp.jwks_url,
        "oidc_provider": PROVIDER,
        "oidc_audience": AUDIENCE,
        "oidc_issuer": ISSUER,
        "oidc_username_in_token": "preferred_username",
        "oidc_timeout": 5,
        **options,
    }
    return OidcAuthentication("oidc", OidcAuthentication.parse_options(raw, "test"))


def authenticate(idp: IdentityProvider, token: str, job_id: str, **options: Any) -> str:
    idp.tokens[job_id] = token
    request = AuthRequest("_default_", job_id, idp.token_endpoint(job_id))
    identity = plugin(idp, **options).authenticate(request)
    assert identity is not None
    return identity.username


def refusal(idp: IdentityProvider, token: str, job_id: str, **options: Any) -> UserAuthError:
    with pytest.raises(UserAuthError) as caught:
        authenticate(idp, token, job_id, **options)
    assert token not in caught.value.message
    return caught.value


def test_a_valid_token_names_its_user(idp: IdentityProvider) -> None:
    assert authenticate(idp, idp.token("alice"), "ok") == "alice"
    # the endpoint was asked for this job, with Galaxy's job key and our provider appended
    (query,) = [q for path, q in idp.requests if path == "/api/jobs/ok/oidc-tokens"]
    assert query == {"job_key": ["s3cret-job-key"], "provider": [PROVIDER]}


def test_expired(idp: IdentityProvider) -> None:
    assert refusal(idp, idp.token(lifetime=-60), "exp").reason == "expired"


def test_leeway_tolerates_small_clock_skew(idp: IdentityProvider) -> None:
    assert authenticate(idp, idp.token(lifetime=-5), "skew", oidc_leeway=60) == "alice"


def test_a_token_without_expiry_is_refused(idp: IdentityProvider) -> None:
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "alice"},
        idp.key,
        algorithm="RS256",
        headers={"kid": idp.kid},
    )
    error = refusal(idp, token, "noexp")
    assert error.reason == "missing_claim" and "'exp'" in error.message


def test_wrong_audience(idp: IdentityProvider) -> None:
    assert refusal(idp, idp.token(audience="another-app"), "aud").reason == "audience"


def test_audience_may_be_one_of_several(idp: IdentityProvider) -> None:
    token = idp.token(audience="second")
    assert authenticate(idp, token, "aud2", oidc_audience=["first", "second"]) == "alice"


def test_audience_not_checked_when_not_configured(idp: IdentityProvider) -> None:
    """Pulsar's behaviour, kept for its configurations (a warning is logged at start-up)."""
    assert authenticate(idp, idp.token(audience="x"), "noaud", oidc_audience=None) == "alice"


def test_wrong_issuer(idp: IdentityProvider) -> None:
    assert refusal(idp, idp.token(issuer="https://evil.test"), "iss").reason == "issuer"


def test_signed_with_another_key_under_the_published_kid(idp: IdentityProvider) -> None:
    error = refusal(idp, idp.token(key=new_key()), "sig")
    assert error.reason == "signature"


def test_signed_with_a_key_not_in_the_jwks(idp: IdentityProvider) -> None:
    error = refusal(idp, idp.token(key=new_key(), kid="unknown-kid"), "kid")
    assert error.reason == "signature" and "not in the provider's JWKS" in error.message


def test_an_algorithm_not_allowed(idp: IdentityProvider) -> None:
    """RS512 with the right key is still refused when only RS256 is configured."""
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "a", "exp": 2**33},
        idp.key,
        algorithm="RS512",
        headers={"kid": idp.kid},
    )
    assert refusal(idp, token, "alg").reason == "algorithm"


def test_a_symmetric_algorithm_is_refused(idp: IdentityProvider) -> None:
    """HS256 (a shared secret, which a JWKS never is) is refused by name, before any key."""
    token = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "preferred_username": "a", "exp": 2**33},
        b"any-secret-key-of-32-bytes-or-more!",
        algorithm="HS256",
        headers={"kid": idp.kid},
    )
    assert refusal(idp, token, "hs").reason == "algorithm"


def test_garbage_is_malformed(idp: IdentityProvider) -> None:
    assert refusal(idp, "not.a.jwt", "garbage").reason == "malformed"


def test_username_claim_and_template(idp: IdentityProvider) -> None:
    token = idp.token("alice@example.org")
    assert authenticate(idp, token, "tpl", oidc_username_template="[^@]+") == "alice"
    error = refusal(idp, token, "tpl2", oidc_username_template="bob")
    assert error.reason == "username_template"
    error = refusal(idp, idp.token(), "claim", oidc_username_in_token="email")
    assert error.reason == "no_username"


def test_no_token_endpoint(idp: IdentityProvider) -> None:
    with pytest.raises(UserAuthError) as caught:
        plugin(idp).authenticate(AuthRequest("_default_", "j", None))
    assert caught.value.reason == "no_token_endpoint"


def test_token_endpoints_restrict_where_the_server_goes(idp: IdentityProvider) -> None:
    idp.tokens["where"] = idp.token()
    request = AuthRequest("_default_", "where", idp.token_endpoint("where"))
    allowed = plugin(idp, oidc_token_endpoints=[f"{idp.base}/api/jobs/"])
    assert allowed.authenticate(request).username == "alice"
    for elsewhere in (f"{idp.base}/other/", f"{idp.base}.evil.test/api/jobs/", "http://x/api/"):
        with pytest.raises(UserAuthError) as caught:
            plugin(idp, oidc_token_endpoints=[elsewhere]).authenticate(request)
        assert caught.value.reason == "bad_endpoint"
    before = idp.count("/api/jobs/where/oidc-tokens")
    assert before == 1  # the refused ones never asked


def test_only_http_token_endpoints_are_fetched(idp: IdentityProvider) -> None:
    request = AuthRequest("_default_", "j", "file:///etc/passwd?x=1")
    with pytest.raises(UserAuthError) as caught:
        plugin(idp).authenticate(request)
    assert caught.value.reason == "bad_endpoint"


def test_token_endpoint_failure_is_a_service_error_without_the_job_key(
    idp: IdentityProvider,
) -> None:
    request = AuthRequest("_default_", "none-here", idp.token_endpoint("none-here"))
    with pytest.raises(IdentityServiceError) as caught:
        plugin(idp).authenticate(request)
    assert "answered HTTP 404" in caught.value.message
    assert "/api/jobs/none-here/oidc-tokens" in caught.value.message
    assert "s3cret" not in caught.value.message


def test_redirects_are_not_followed(idp: IdentityProvider) -> None:
    idp.tokens["r"] = idp.token()
    request = AuthRequest("_default_", "r", f"{idp.base}/redirect?job_key=s3cret-job-key")
    with pytest.raises(IdentityServiceError, match="answered HTTP 302"):
        plugin(idp).authenticate(request)
    assert idp.count("/api/jobs/r/oidc-tokens") == 0


def test_an_invalid_url_is_named_without_its_query(idp: IdentityProvider) -> None:
    request = AuthRequest("_default_", "j", f"{idp.base}/api/jobs/a b/x?job_key=s3cret-job-key")
    with pytest.raises(IdentityServiceError) as caught:
        plugin(idp).authenticate(request)
    assert "is not a valid URL" in caught.value.message
    assert "s3cret" not in caught.value.message


def test_unreachable_token_endpoint(idp: IdentityProvider) -> None:
    request = AuthRequest("_default_", "j", "http://127.0.0.1:9/api/jobs/j/oidc-tokens?job_key=k")
    with pytest.raises(IdentityServiceError, match="could not be reached"):
        plugin(idp, oidc_timeout=2).authenticate(request)


def test_jwks_failures_are_service_errors(idp: IdentityProvider) -> None:
    idp.tokens["jw"] = idp.token()
    request = AuthRequest("_default_", "jw", idp.token_endpoint("jw"))
    idp.jwks_status = 500
    try:
        with pytest.raises(IdentityServiceError, match=r"JWKS at http://127\.0\.0\.1:\d+/jwks"):
            plugin(idp).authenticate(request)
    finally:
        idp.jwks_status = None
    broken = plugin(idp, oidc_jwks_url="http://127.0.0.1:9/jwks", oidc_timeout=2)
    with pytest.raises(IdentityServiceError, match="JWKS"):
        broken.authenticate(request)


def test_the_key_set_is_cached_between_jobs(idp: IdentityProvider) -> None:
    cached = plugin(idp)
    before = idp.count("/jwks")
    for number in range(5):
        job_id = f"cache{number}"
        idp.tokens[job_id] = idp.token()
        cached.authenticate(AuthRequest("_default_", job_id, idp.token_endpoint(job_id)))
    assert idp.count("/jwks") - before == 1
