"""An identity provider and a Galaxy token endpoint for the user_auth tests, on loopback.

One real ``http.server`` serves both what an OIDC provider publishes (``/jwks``, the public keys)
and what Galaxy answers a job runner (``/api/jobs/<id>/oidc-tokens?job_key=..&provider=..``, the
job owner's ID token as plain text). Tokens are made with PyJWT and signed with RSA keys made
here; the test decides per job which token Galaxy hands out, and can make either service fail.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.test/realms/galaxy"
AUDIENCE = "galaxy-client"
PROVIDER = "keycloak"
JOB_KEY = "s3cret-job-key"


#: the authorization part of a user_auth file: alice and bob may run jobs
USERLIST = "  - type: userlist\n    userlist_allowed_users: [alice, bob]\n"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def user_auth_yaml(idp: IdentityProvider, authorization: str, **oidc: str) -> str:
    """A user_auth file: oidc against ``idp`` (audience and issuer checked), then
    ``authorization`` (YAML list items); ``oidc`` adds options to the oidc plugin."""
    extra = "".join(f"    {key}: {value}\n" for key, value in oidc.items())
    return (
        "authentication:\n"
        "  - type: oidc\n"
        f"    oidc_jwks_url: {idp.jwks_url}\n"
        f"    oidc_provider: {PROVIDER}\n"
        f"    oidc_audience: {AUDIENCE}\n"
        f"    oidc_issuer: {ISSUER}\n"
        "    oidc_username_in_token: preferred_username\n"
        "    oidc_timeout: 5\n"
        f"{extra}authorization:\n{authorization}"
    )


class IdentityProvider:
    """The JWKS, Galaxy's token endpoint, and a token factory; a context manager."""

    def __init__(self) -> None:
        self.key = new_key()
        self.kid = "key-1"
        #: job id -> the token Galaxy's endpoint answers for it
        self.tokens: dict[str, str] = {}
        #: what each service answers instead, when set: an HTTP status
        self.jwks_status: int | None = None
        self.token_status: int | None = None
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> IdentityProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.base}/jwks"

    def token_endpoint(self, job_id: str, job_key: str = JOB_KEY) -> str:
        """The URL Galaxy's Pulsar runner gives a job (the server appends ``&provider=``)."""
        return f"{self.base}/api/jobs/{job_id}/oidc-tokens?job_key={job_key}"

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for seen, _ in self.requests if seen == path)

    def token(
        self,
        username: str = "alice",
        *,
        lifetime: float = 300,
        audience: str = AUDIENCE,
        issuer: str = ISSUER,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """An ID token as the provider would sign it; every part can be made wrong."""
        now = int(time.time())
        payload = {
            "iss": issuer,
            "aud": audience,
            "sub": f"id-{username}",
            "preferred_username": username,
            "iat": now,
            "exp": now + int(lifetime),
            **claims,
        }
        return jwt.encode(
            payload, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                with provider._lock:
                    provider.requests.append((parts.path, query))
                if parts.path == "/jwks":
                    if provider.jwks_status:
                        return self._answer(provider.jwks_status, b"broken")
                    return self._answer(200, json.dumps(provider.jwks()).encode(), "json")
                if parts.path == "/redirect":  # a Galaxy behind a misconfigured proxy
                    self.send_response(302)
                    self.send_header("Location", f"{provider.base}/api/jobs/r/oidc-tokens")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                segments = parts.path.strip("/").split("/")
                if segments[:2] == ["api", "jobs"] and segments[3:] == ["oidc-tokens"]:
                    return self._token(segments[2], query)
                self._answer(404, b"no such path")

            def _token(self, job_id: str, query: dict[str, list[str]]) -> None:
                if provider.token_status:
                    return self._answer(provider.token_status, b"galaxy says no")
                if query.get("job_key") != [JOB_KEY] or query.get("provider") != [PROVIDER]:
                    return self._answer(403, b"bad job_key or provider")
                token = provider.tokens.get(job_id)
                if token is None:
                    return self._answer(404, b"no token for this job")
                self._answer(200, token.encode())

            def _answer(self, status: int, body: bytes, kind: str = "plain") -> None:
                self.send_response(status)
                ctype = "application/json" if kind == "json" else "text/plain"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
