"""The proxy option (lwr.proxy): its syntax, its credentials, and where they must not show.

The connections themselves are tested with a real forwarding proxy by the webhook and transfer
tests (tests/unit/service/notify/test_webhook_proxy_auth.py,
tests/unit/staging/test_transfer_proxy.py) and with real servers in tests/integration.
"""

from __future__ import annotations

import base64

import pytest

from lwr.config_values import _proxy
from lwr.errors import ConfigurationError
from lwr.proxy import HIDDEN, Proxy, parse_option, redact


def test_percent_encoded_credentials_are_decoded() -> None:
    proxy = Proxy.parse("http://al%40ice:p%3As%2Fs%20w%25rd@proxy.example:3128")
    assert (proxy.username, proxy.password) == ("al@ice", "p:s/s w%rd")
    assert (proxy.host, proxy.port, proxy.tls) == ("proxy.example", 3128, False)
    kind, encoded = str(proxy.authorization()).split(" ")
    assert kind == "Basic" and base64.b64decode(encoded) == b"al@ice:p:s/s w%rd"


def test_utf8_credentials_are_sent_as_utf8() -> None:
    proxy = Proxy.parse("https://j%C3%BCrgen:%E2%82%AC@[fd00::1]:8443")
    assert proxy.tls and proxy.host == "fd00::1" and proxy.username == "jürgen"
    encoded = str(proxy.authorization()).split(" ")[1]
    assert base64.b64decode(encoded).decode("utf-8") == "jürgen:€"


def test_a_user_without_password_and_no_credentials() -> None:
    assert Proxy.parse("http://bob@proxy:1").password == ""
    assert Proxy.parse("http://bob@proxy:1").authorization() == "Basic " + base64.b64encode(
        b"bob:"
    ).decode("ascii")
    assert Proxy.parse("http://proxy:1").authorization() is None


def test_credentials_never_show_in_str_repr_or_errors() -> None:
    proxy = Proxy.parse("https://alice:s3cret@proxy:3128")
    for text in (str(proxy), repr(proxy), f"{proxy}", f"{proxy!r}"):
        assert "s3cret" not in text and "alice" not in text, text
    assert str(proxy) == f"https://{HIDDEN}@proxy:3128"
    assert str(Proxy.parse("http://[::1]:3128")) == "http://[::1]:3128"
    with pytest.raises(ConfigurationError) as caught:
        parse_option("tes_http_proxy", "http://alice:s3cret@proxy:3128/path")
    assert "s3cret" not in str(caught.value) and HIDDEN in str(caught.value)


def test_redact() -> None:
    assert redact("http://u:p@host:1") == f"http://{HIDDEN}@host:1"
    assert redact("http://u:p@w@host:1/x") == f"http://{HIDDEN}@host:1"
    assert redact("http://host:1") == "http://host:1"
    assert redact("no scheme u:p@h") == "no scheme u:p@h"


def test_the_option_through_config_values() -> None:
    assert _proxy({"tes_http_proxy": ""}, "tes_http_proxy") is None
    assert _proxy({"tes_http_proxy": " http://h:1 "}, "tes_http_proxy") == Proxy("h", 1)
    with pytest.raises(ConfigurationError, match=r"tes_http_proxy .*port"):
        _proxy({"tes_http_proxy": "http://h"}, "tes_http_proxy")
