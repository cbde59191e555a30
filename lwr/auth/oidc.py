"""``oidc``: the submitter is the user named in an OIDC ID token Galaxy hands out for the job.

Galaxy's Pulsar runner gives each job a ``token_endpoint``
(``<galaxy>/api/jobs/<id>/oidc-tokens?job_key=<key>``); the client passes it on with the job and
the server asks it for the job owner's token of one identity provider (``&provider=NAME``). The
answer is the raw JWT as text. The token is then verified with PyJWT against the provider's JWKS:
signature (a key of the JWKS, an asymmetric algorithm from ``oidc_algorithms``), expiry, and —
when configured — audience and issuer. Pulsar checks neither audience nor issuer; LWR checks them
whenever ``oidc_audience`` / ``oidc_issuer`` are set, and warns at start-up when they are not.

The token and the endpoint's query string are secrets: neither ever appears in a message or a log
line.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt

from lwr.auth.base import (
    Authentication,
    AuthRequest,
    Identity,
    Option,
    http_url,
    positive_seconds,
    public_url,
    regex,
    seconds,
    text,
    text_list,
)
from lwr.errors import ConfigurationError, IdentityServiceError, UserAuthError

log = logging.getLogger(__name__)

#: signature algorithms a JWKS key can verify; symmetric (HS*) and ``none`` are never accepted
ASYMMETRIC: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
ASYMMETRIC += ("ES256", "ES384", "ES512", "EdDSA")
#: the largest token-endpoint answer read (an ID token is a few KiB)
MAX_TOKEN_BYTES = 64 * 1024


def _url_list(value: Any, where: str) -> tuple[str, ...]:
    return tuple(http_url(item, where) for item in text_list(value, where))


def _algorithms(value: Any, where: str) -> tuple[str, ...]:
    names = text_list(value, where)
    bad = [name for name in names if name not in ASYMMETRIC]
    if bad or not names:
        raise ConfigurationError(
            f"{where}: {', '.join(bad) or 'an empty list'} not allowed; use asymmetric algorithms "
            f"verified with the JWKS ({', '.join(ASYMMETRIC)})"
        )
    return names


class OidcAuthentication(Authentication):
    """Authenticate a job by the OIDC ID token its Galaxy user holds."""

    OPTIONS: ClassVar[Mapping[str, Option]] = {
        "oidc_jwks_url": Option(http_url, required=True),
        "oidc_provider": Option(text, required=True),
        "oidc_username_in_token": Option(text, default="sub"),
        "oidc_username_template": Option(regex),
        "oidc_audience": Option(text_list),
        "oidc_issuer": Option(text),
        "oidc_algorithms": Option(_algorithms, default=("RS256",)),
        "oidc_leeway": Option(seconds, default=0.0),
        "oidc_timeout": Option(positive_seconds, default=10.0),
        "oidc_jwks_cache_time": Option(positive_seconds, default=300.0),
        "oidc_token_endpoints": Option(_url_list),
    }

    def __init__(self, type_name: str, options: Mapping[str, Any]) -> None:
        super().__init__(type_name, options)
        self.provider: str = options["oidc_provider"]
        self.jwks_url: str = options["oidc_jwks_url"]
        self.timeout: float = options["oidc_timeout"]
        self.jwks = jwt.PyJWKClient(
            self.jwks_url,
            cache_jwk_set=True,
            lifespan=options["oidc_jwks_cache_time"],
            timeout=self.timeout,
        )
        for option, what in (("oidc_audience", "audience"), ("oidc_issuer", "issuer")):
            if options[option] is None:
                log.warning(
                    "user_auth oidc (provider %s): %s not set, so tokens' %s is not checked",
                    self.provider,
                    option,
                    what,
                )

    def authenticate(self, request: AuthRequest) -> Identity:
        if not request.token_endpoint:
            raise UserAuthError(
                "the client sent no token_endpoint, so no OIDC token could be obtained "
                "(Galaxy sends one with each job of a Pulsar destination)",
                "no_token_endpoint",
            )
        token = self.fetch_token(request.token_endpoint)
        claims = self.verify(token)
        return Identity(self._username(claims), self.type_name, claims)

    # -- the token --------------------------------------------------------------------------

    def fetch_token(self, endpoint: str) -> str:
        """GET the job's token for ``oidc_provider`` from Galaxy's token endpoint."""
        url = _with_query(endpoint, {"provider": self.provider})
        where = public_url(endpoint)
        if urlsplit(url).scheme not in ("http", "https"):
            raise UserAuthError(f"token_endpoint {where!r} is not an http(s) URL", "bad_endpoint")
        allowed = self.options["oidc_token_endpoints"]
        if allowed and not any(_under(url, prefix) for prefix in allowed):
            raise UserAuthError(
                f"token_endpoint {where!r} is not under oidc_token_endpoints", "bad_endpoint"
            )
        request = urllib.request.Request(url, headers={"Accept": "text/plain"})
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                body = response.read(MAX_TOKEN_BYTES + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise IdentityServiceError(
                f"the token endpoint {where} answered HTTP {exc.code} for provider "
                f"{self.provider!r}"
            ) from None
        except (ValueError, http.client.InvalidURL):  # these messages quote the URL, job key too
            raise IdentityServiceError(f"the token endpoint {where} is not a valid URL") from None
        except http.client.HTTPException as exc:
            raise IdentityServiceError(
                f"the token endpoint {where} gave no valid HTTP answer ({type(exc).__name__})"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IdentityServiceError(
                f"the token endpoint {where} could not be reached: {reason}"
            ) from None
        if len(body) > MAX_TOKEN_BYTES:
            raise IdentityServiceError(f"the token endpoint {where} answered more than 64 KiB")
        token = body.decode("utf-8", "replace").strip().strip('"')
        if not token:
            raise UserAuthError(
                f"the token endpoint gave no token for provider {self.provider!r}", "no_token"
            )
        return token

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, expiry, audience and issuer are checked."""
        key = self._signing_key(token).key
        audience = self.options["oidc_audience"]
        issuer = self.options["oidc_issuer"]
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=list(self.options["oidc_algorithms"]),
                audience=list(audience) if audience else None,
                issuer=issuer,
                leeway=self.options["oidc_leeway"],
                options={"require": ["exp"], "verify_aud": bool(audience)},
            )
        except jwt.InvalidTokenError as exc:
            raise _refusal(exc) from None

    def _signing_key(self, token: str) -> Any:
        """The JWKS key the token names (by ``kid``); the key set is cached between jobs."""
        try:
            self.jwks.get_jwk_set()
        except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
            raise IdentityServiceError(
                f"the JWKS at {public_url(self.jwks_url)} is unusable: {_short(exc)}"
            ) from None
        try:
            return self.jwks.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as exc:
            raise IdentityServiceError(
                f"the JWKS at {public_url(self.jwks_url)} could not be fetched: {_short(exc)}"
            ) from None
        except jwt.PyJWKClientError:
            raise UserAuthError(
                "the token is signed with a key that is not in the provider's JWKS", "signature"
            ) from None
        except jwt.InvalidTokenError:
            raise UserAuthError("the token is not a well-formed JWT", "malformed") from None

    def _username(self, claims: Mapping[str, Any]) -> str:
        claim = self.options["oidc_username_in_token"]
        value = claims.get(claim)
        if not isinstance(value, str) or not value:
            raise UserAuthError(f"the token has no {claim!r} claim to name its user", "no_username")
        template = self.options["oidc_username_template"]
        if template is None:
            return value
        found = template.match(value)
        if found is None or not found.group(0):
            raise UserAuthError(
                f"the token's {claim!r} {value!r} does not match oidc_username_template",
                "username_template",
            )
        return found.group(0)


#: PyJWT's errors, most specific first, and the reason each refusal reports
_REASONS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "the token has expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid", "the token is not valid yet"),
    (jwt.InvalidAudienceError, "audience", "the token is meant for another audience"),
    (jwt.InvalidIssuerError, "issuer", "the token was issued by another issuer"),
    (jwt.InvalidSignatureError, "signature", "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "algorithm", "the token is signed with an algorithm not allowed"),
    (jwt.MissingRequiredClaimError, "missing_claim", "the token lacks a required claim"),
    (jwt.DecodeError, "malformed", "the token is not a well-formed JWT"),
)


def _refusal(exc: jwt.InvalidTokenError) -> UserAuthError:
    for kind, reason, message in _REASONS:
        if isinstance(exc, kind):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                message = f"{message} ({exc.claim!r})"
            return UserAuthError(message, reason)
    return UserAuthError(f"the token is not valid: {_short(exc)}", "invalid")


def _short(exc: BaseException) -> str:
    """An exception's message, bounded (PyJWT's never include the token itself)."""
    return str(exc)[:200] or type(exc).__name__


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Answer a redirect as the error it is here: following it could leave oidc_token_endpoints,
    and Galaxy's endpoint does not redirect when the runner's ``galaxy_url`` is right."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def _under(url: str, prefix: str) -> bool:
    """Whether ``url`` is on the scheme and host of ``prefix`` and below its path."""
    got, want = urlsplit(url), urlsplit(prefix)
    same_origin = (got.scheme, got.netloc.lower()) == (want.scheme, want.netloc.lower())
    return same_origin and got.path.startswith(want.path)


def _with_query(url: str, extra: Mapping[str, str]) -> str:
    """``url`` with ``extra`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(extra)}" if parts.query else urlencode(extra)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
