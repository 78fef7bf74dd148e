"""The guard on HTTP the workers send to URLs that people typed (server-side request forgery).
Imports no project app.

Webhooks (personal Slack-compatible URLs, release communications, rollback policies), CI
pollers' base URLs and Prometheus URLs are typed by release managers and admins, and the
worker calls them from inside the network. Without a guard, ``http://169.254.169.254/`` (cloud
metadata), ``http://127.0.0.1:6379/`` or an internal admin panel is one form away.

Two checks, the same rule (``refusal_reason``: loopback, private, link-local, multicast,
reserved, unspecified or otherwise not globally routable addresses are refused, IPv4-mapped
IPv6 addresses judged as the IPv4 address they carry):

- **When a URL is accepted** (forms, the admin, services): ``check_outbound_url`` refuses an
  IP literal of those classes, or a name that resolves (every address ``getaddrinfo`` gives)
  to one. A name that does not resolve at all is accepted: DNS may be down or the name not
  yet published, and the send-time check below decides anyway.
- **When the worker sends** (``outbound_client``): a name may resolve differently by then
  (DNS rebinding, or a record changed after the URL was saved), so the check is repeated on
  the address the socket actually connects to. This is an httpcore *network backend*
  (``_GuardedBackend.connect_tcp``) passed to the ``httpcore.ConnectionPool`` of an
  ``httpx.HTTPTransport`` subclass: it resolves the host once, refuses if any address is
  refused, and connects to the checked IP itself. httpcore still does TLS with the URL's
  name as SNI and for certificate verification, and httpx still sends the URL's Host header,
  so nothing else changes. It runs for every new connection, so every redirect hop is checked
  too (the clients do not follow redirects anyway). Chosen over rewriting the URL to the IP
  (breaks SNI and certificates) and over an event hook that resolves before sending (a
  second resolution, so the rebinding window stays open); ``network_backend`` is a public
  argument of ``httpcore.ConnectionPool`` in the httpcore 1.x that httpx 0.28 pins.
  The client ignores proxy environment variables (``trust_env=False``): a proxy would make
  the connection, and this guard could no longer see where it goes.

``OUTBOUND_ALLOW_PRIVATE`` (setting, env var of the same name) turns the address check off:
on in local development and tests (stub servers on 127.0.0.1), off in production unless an
administrator sets it (a self-hosted Mattermost or Jenkins on a private network).
``OUTBOUND_ALLOWED_NETWORKS`` (CIDRs) allows just some private networks instead, e.g. the
internal Jenkins subnet.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from django.conf import settings
from django.core.exceptions import ValidationError

__all__ = [
    "OutboundRefused",
    "check_outbound_url",
    "outbound_client",
    "refusal_reason",
]

# httpx's own default (httpx._config.DEFAULT_LIMITS, not exported).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ADVICE = "ask an administrator to allow private destinations (OUTBOUND_ALLOW_PRIVATE)"


class OutboundRefused(ValidationError):
    """A URL the workers must not call. A ``ValidationError``, so a form's ``clean_*`` can let
    it through as the field's error; the senders catch it and record it as a failed delivery
    that is not retried (the same address would be refused again)."""

    def __init__(self, message: str):
        super().__init__(message, code="outbound_refused")
        self.reason = message

    def __str__(self) -> str:
        return self.reason


def _allow_private() -> bool:
    return bool(getattr(settings, "OUTBOUND_ALLOW_PRIVATE", False))


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(cidr, strict=False)
        for cidr in getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ())
    ]


def refusal_reason(ip: IPAddress) -> str:
    """Why the workers may not connect to ``ip`` ("" when they may)."""
    if _allow_private():
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(ip in net for net in _allowed_networks()):
        return ""
    for kind, flag in (
        ("an unspecified", ip.is_unspecified),
        ("a loopback", ip.is_loopback),
        ("a link-local", ip.is_link_local),
        ("a multicast", ip.is_multicast),
        ("a reserved", ip.is_reserved),
        ("a private", ip.is_private),
        ("a non-public", not ip.is_global),
    ):
        if flag:
            return kind
    return ""


def _refuse(host: str, ip: IPAddress, kind: str, *, literal: bool) -> OutboundRefused:
    where = f"is {kind} address" if literal else f"resolves to {kind} address ({ip})"
    return OutboundRefused(f"{host} {where}; {ADVICE}.")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of ``host``, in getaddrinfo's order (duplicates dropped)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


def _checked(host: str, addresses: Iterable[IPAddress], *, literal: bool) -> list[IPAddress]:
    addresses = list(addresses)
    for ip in addresses:
        kind = refusal_reason(ip)
        if kind:
            raise _refuse(host, ip, kind, literal=literal)
    return addresses


def check_outbound_url(url: str) -> None:
    """Raise ``OutboundRefused`` when the workers must not call ``url``: not http(s), no host,
    or a host that is (or resolves to) an address ``refusal_reason`` refuses. A name that
    does not resolve now is accepted (it is checked again when the worker sends)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise OutboundRefused(f"{url!r} is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise OutboundRefused(f"{url!r} is not an http(s) URL with a host.")
    host = parsed.host
    literal = _literal(host)
    if literal is not None:
        _checked(host, [literal], literal=True)
        return
    if _allow_private():
        return
    try:
        addresses = _resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        return
    _checked(host, addresses, literal=False)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolve, check every address, connect to a checked one (see the module docstring)."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        literal = _literal(host)
        try:
            addresses = [literal] if literal is not None else _resolve(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise httpcore.ConnectError(f"Cannot resolve {host}: {exc}") from exc
        last: Exception | None = None
        for ip in _checked(host, addresses, literal=literal is not None):
            try:
                return super().connect_tcp(str(ip), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"No address for {host}.")


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connections go through ``_GuardedBackend``."""

    def __init__(self, *, verify: Any = True, limits: httpx.Limits | None = None, **kwargs: Any):
        limits = limits or DEFAULT_LIMITS
        super().__init__(verify=verify, limits=limits, trust_env=False, **kwargs)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(),
        )


def outbound_client(
    *, limits: httpx.Limits | None = None, follow_redirects: bool = False, **kwargs: Any
) -> httpx.Client:
    """An ``httpx.Client`` for URLs people typed: every connection checked, no redirects
    followed unless asked (and then every hop is checked), no proxy from the environment.
    Requests raise ``OutboundRefused`` for a refused address."""
    transport = GuardedTransport(limits=limits)
    return httpx.Client(
        transport=transport, follow_redirects=follow_redirects, trust_env=False, **kwargs
    )
