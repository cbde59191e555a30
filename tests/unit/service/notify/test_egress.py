"""The webhook egress policy: which addresses a webhook may reach, judged after resolution."""

from __future__ import annotations

import socket

import pytest

from lwr.egress import (
    EgressPolicy,
    EgressRefused,
    Target,
    UnresolvedHost,
    parse_networks,
)
from lwr.errors import InvalidRequestError

#: internal targets in every spelling a user might try, with the category the refusal names
REFUSED = {
    "http://127.0.0.1/x": "127.0.0.1 is an internal address (loopback)",
    "http://127.0.0.2:8080/x": "loopback",
    "http://localhost:8913/x": "'localhost' resolves to an internal address (loopback)",
    "http://LOCALHOST/x": "'localhost' resolves to an internal address (loopback)",
    "http://2130706433/x": "2130706433 is 127.0.0.1, an internal address (loopback)",
    "http://0177.0.0.1/x": "0177.0.0.1 is 127.0.0.1, an internal address (loopback)",
    "http://0x7f.1/x": "0x7f.1 is 127.0.0.1, an internal address (loopback)",
    "http://127.1/x": "loopback",
    "http://[::1]/x": "::1 is an internal address (loopback)",
    "http://[::ffff:127.0.0.1]/x": "(loopback (it carries the IPv4 address 127.0.0.1))",
    "http://[::ffff:7f00:1]/x": "it carries the IPv4 address 127.0.0.1",
    "http://[::ffff:169.254.169.254]/latest/meta-data/": "169.254.169.254",
    "http://169.254.169.254/latest/meta-data/": "(link-local)",
    "http://[fe80::1]/x": "link-local",
    "http://10.0.0.1/x": "private",
    "http://172.16.5.4/x": "private",
    "http://192.168.1.1/x": "private",
    "http://[fd00::1]/x": "private",
    "http://[fec0::1]/x": "site-local",
    "http://100.64.0.1/x": "not globally routable",
    "http://224.0.0.251/x": "multicast",
    "http://224.0.1.1/x": "multicast",
    "http://[ff02::1]/x": "multicast",
    "http://0.0.0.0/x": "unspecified",
    "http://0/x": "unspecified",
    "http://[::]/x": "unspecified",
    "http://240.0.0.1/x": "reserved",
    "http://255.255.255.255/x": "reserved",
    "http://[2002:7f00:1::]/x": "it carries the IPv4 address 127.0.0.1",
    "http://[64:ff9b::a9fe:a9fe]/x": "link-local (it carries the IPv4 address 169.254.169.254)",
}


@pytest.mark.parametrize("url", sorted(REFUSED))
def test_internal_targets_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        EgressPolicy().check_url(url)
    message = str(refused.value)
    assert REFUSED[url] in message and "notify_webhook_allowed_networks" in message
    assert refused.value.status == 400


def test_embedded_ipv4_is_judged_when_the_ipv6_address_itself_looks_public() -> None:
    """6to4 and NAT64 addresses are globally routable IPv6, but lead to their IPv4 address."""
    policy = EgressPolicy()
    from ipaddress import ip_address

    assert policy.refusal(ip_address("2002:7f00:1::")) == (
        "loopback (it carries the IPv4 address 127.0.0.1)"
    )
    assert "169.254.169.254" in str(policy.refusal(ip_address("64:ff9b::a9fe:a9fe")))
    assert policy.refusal(ip_address("2002:5db8:d822::")) is None  # 6to4 of a public address


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]:8443/h",
        "http://8.8.8.8",
    ],
)
def test_public_addresses_pass(url: str) -> None:
    EgressPolicy().check_url(url)  # judged only: nothing is connected to


def test_allowed_networks_open_only_themselves() -> None:
    policy = EgressPolicy(parse_networks("127.0.0.3/32, 10.1.0.0/16 fd00:1::/32"))
    for url in ("http://127.0.0.3:80/x", "http://[::ffff:127.0.0.3]/x", "http://10.1.2.3/x"):
        policy.check_url(url)
    policy.check_url("http://[fd00:1::5]/x")
    for url in ("http://127.0.0.1/x", "http://10.2.0.1/x", "http://[fd00:2::5]/x"):
        with pytest.raises(InvalidRequestError):
            policy.check_url(url)


def test_a_name_with_one_internal_answer_among_public_ones_is_refused() -> None:
    answers: list[Target] = [
        (socket.AF_INET, ("93.184.216.34", 80)),
        (socket.AF_INET, ("10.0.0.7", 80)),
    ]
    policy = EgressPolicy(resolver=lambda host, port: answers)
    with pytest.raises(EgressRefused, match=r"'mixed\.example' resolves to an internal address"):
        policy.targets("mixed.example", 80)
    with pytest.raises(InvalidRequestError) as refused:
        policy.check_url("http://mixed.example/hook")
    assert "10.0.0.7" not in str(refused.value)  # a name's internal answer is not told


def test_a_name_that_does_not_resolve_is_accepted_at_registration_only() -> None:
    """It may exist later; every try resolves and judges it again before connecting."""
    policy = EgressPolicy()
    policy.check_url("http://no-such-host.invalid/hook")
    with pytest.raises(UnresolvedHost):
        policy.targets("no-such-host.invalid", 80)


def test_allowed_networks_are_parsed_strictly() -> None:
    assert [str(n) for n in parse_networks("10.0.0.0/8,\n fd00::/8  192.0.2.7")] == [
        "10.0.0.0/8",
        "fd00::/8",
        "192.0.2.7/32",
    ]
    assert parse_networks("") == ()
    for bad in ("10.0.0.1/8", "example.org", "10.0.0.0/33"):
        with pytest.raises(ValueError):
            parse_networks(bad)
