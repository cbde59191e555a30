"""Where the server connects on a user's behalf: never its own network unless an operator says.

A webhook URL, and a TES task's ``http(s)`` inputs and outputs, are chosen by whoever holds a
user's token, and the server connects to them from inside its network: without a guard,
``http://169.254.169.254/`` (a cloud's metadata service, with its credentials),
``http://127.0.0.1:5432/`` or an intranet service would be reached by LWR on the user's behalf
(server-side request forgery). So every address such a connection would go to is judged here, by
:mod:`ipaddress`: loopback, private, link-local, multicast, reserved, unspecified and otherwise
not globally routable addresses are refused, for IPv4 and IPv6, including IPv4 addresses carried
inside IPv6 ones (``::ffff:127.0.0.1``, 6to4, Teredo, NAT64).

What is judged is what the system resolver answers, never the URL's spelling: ``2130706433``,
``0177.0.0.1``, ``0x7f.1`` and ``127.1`` all come back from ``getaddrinfo`` as ``127.0.0.1``. The
name is resolved once per try and the connection made to an address that was judged
(:class:`PinnedConnection`), so a name whose DNS answer changes between the check and the
connection (DNS rebinding) cannot slip through. Each use has its operator option to open chosen
networks (``notify_webhook_allowed_networks``, ``tes_user_allowed_networks``); nothing else does.
Users of :mod:`lwr.service.notify.webhook` and :mod:`lwr.staging.transfer` (TES tasks of service
users: :mod:`lwr.tes.staging`) share this one policy.

Webhooks and TES transfers may go through an operator's forward proxy
(``notify_webhook_proxy``, ``tes_http_proxy``: :mod:`lwr.proxy`): the target is judged here all
the same, before the proxy is asked, but the proxy resolves the name itself and connects where
its answer says; what that keeps and what it gives up is in docs/security.md ("Outgoing
connections through a proxy").
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from lwr.errors import InvalidRequestError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: one connectable address as ``getaddrinfo`` gives it: (family, sockaddr)
Target = tuple[int, tuple[object, ...]]
#: ``resolver(host, port)``: the system's ``getaddrinfo`` unless a test gives another
Resolver = Callable[[str, int], list[Target]]

#: the well-known NAT64 prefixes (RFC 6052, RFC 8215): the IPv4 address is the last 32 bits
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class EgressRefused(Exception):
    """A target is an address the policy refuses (a permanent failure, not retried)."""


class UnresolvedHost(Exception):
    """The target's host name has no address now (perhaps for a while: retried)."""


def system_resolver(host: str, port: int) -> list[Target]:
    """Every TCP address of ``host`` (a literal in any form ``inet_aton`` takes, or a name)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvedHost(f"cannot resolve {host!r}: {exc}") from None
    return [(family, sockaddr) for family, _, _, _, sockaddr in found]


def parse_networks(text: str) -> tuple[Network, ...]:
    """An ``*_allowed_networks`` option: CIDRs (or single addresses), comma or space apart.

    Raises ValueError naming the bad entry (``10.0.0.1/8`` is one: host bits set).
    """
    entries = text.replace(",", " ").split()
    return tuple(ipaddress.ip_network(entry, strict=True) for entry in entries)


def _embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which is where a packet to it may go."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.sixtofour]
    if address.teredo is not None:
        found.extend(address.teredo)
    if any(address in prefix for prefix in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def _category(address: Address) -> str | None:
    """Why ``address`` itself is internal (None: a public address)."""
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("not globally routable", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class EgressPolicy:
    """Which addresses may be reached: public ones, plus the ``allowed`` networks."""

    allowed: tuple[Network, ...] = ()
    resolver: Resolver = system_resolver

    def refusal(self, address: Address) -> str | None:
        """Why the server may not connect to ``address``; None when it may."""
        mapped = None
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id:
                address = ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
            mapped = address.ipv4_mapped  # ::ffff:a.b.c.d is a.b.c.d, allowed or not
        candidates = [address] if mapped is None else [address, mapped]
        if any(one in network for one in candidates for network in self.allowed):
            return None
        if mapped is not None:
            reason = _category(mapped)
            return None if reason is None else f"{reason} (it carries the IPv4 address {mapped})"
        for inner in _embedded_ipv4(address):  # 6to4, Teredo, NAT64 lead to their IPv4 address
            inner_reason = _category(inner)
            if inner_reason is not None:
                return f"{inner_reason} (it carries the IPv4 address {inner})"
        return _category(address)

    def targets(self, host: str, port: int) -> list[Target]:
        """Resolve ``host`` once; every answer must be allowed. What to connect to, in order.

        One refused answer refuses them all: a name mixing public and internal addresses is
        someone's trick, and which one a client would pick is not ours to guess.
        """
        targets = self.resolver(host, port)
        if not targets:
            raise UnresolvedHost(f"{host!r} has no address")
        for _, sockaddr in targets:
            address = ipaddress.ip_address(str(sockaddr[0]))
            reason = self.refusal(address)
            if reason is not None:
                raise EgressRefused(_explain(host, address, reason))
        return targets

    def check_url(
        self,
        url: str,
        field: str = "webhook_url",
        setting: str = "notify_webhook_allowed_networks",
        who: str = "webhooks",
    ) -> None:
        """At registration: a 400 naming why ``url``'s host is refused.

        A name that does not resolve now is accepted (it may exist later, and every try is
        judged again before it connects); one whose answers include a refused address is not.
        """
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            self.targets(host, parts.port or (443 if parts.scheme == "https" else 80))
        except EgressRefused as exc:
            raise InvalidRequestError(
                f"{field} refused: {exc}; {who} may only reach public addresses "
                f"(the server's administrator can allow networks: {setting})"
            ) from None
        except UnresolvedHost:
            return

    def literal_refusal(self, url: str) -> str | None:
        """Why ``url``'s host, when it is an address literal (in any spelling), is refused.

        Names are not resolved (None): at task creation a DNS look-up would hold the request
        and prove nothing, since each connection is judged again (:meth:`targets`).
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            found = socket.getaddrinfo(
                host, 0, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
            )
        except (socket.gaierror, UnicodeError, ValueError):
            return None
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]))
            reason = self.refusal(address)
            if reason is not None:
                return _explain(host, address, reason)
        return None


def _explain(host: str, address: Address, reason: str) -> str:
    """The refusal's message: a literal is named, a name's internal answer is not (no DNS
    oracle into the server's network beyond the refusal itself)."""
    try:
        ipaddress.ip_address(host)
        return f"{host} is an internal address ({reason})"
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # an IPv4 address spelt oddly: 2130706433, 0177.0.0.1, 0x7f.1
        return f"{host} is {address}, an internal address ({reason})"
    except OSError:
        return f"{host!r} resolves to an internal address ({reason})"


def describe(networks: Iterable[Network]) -> str:
    """The allowed networks as the option spells them (for logs and ``lwr users show``)."""
    return ", ".join(str(network) for network in networks) or "(none)"


class PinnedConnection(http.client.HTTPConnection):
    """An HTTP connection to ``targets`` (addresses already judged), speaking for ``host``.

    The URL's host goes in the ``Host`` header; the socket goes to the first target that takes
    it, never to a second resolution of the name (which a DNS rebinding would answer).
    """

    def __init__(self, host: str, port: int, targets: list[Target], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._targets = targets

    def _open(self) -> socket.socket:
        error: OSError | None = None
        for family, sockaddr in self._targets:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        raise error or OSError(f"{self.host!r} has no address")

    def connect(self) -> None:
        self.sock = self._open()


class PinnedTlsConnection(PinnedConnection):
    """The same over TLS: the certificate must be the URL host's (SNI and check by name)."""

    def __init__(
        self, host: str, port: int, targets: list[Target], timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, targets, timeout)
        self._context = context

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(self._open(), server_hostname=self.host)
