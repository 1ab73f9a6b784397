"""Which network addresses Recaudo may call on a company's behalf (SSRF guard).

A company chooses its webhook URL and its pass-through URL, and Recaudo then makes HTTP
requests to them from inside its own network. Without a guard, such a URL could point
Recaudo at itself (``http://127.0.0.1:8000/api/...``), at the office network
(``10.0.0.0/8``) or at the cloud's metadata service (``169.254.169.254``), and the answer
status or timing leaks what is there. So only public internet addresses are allowed:

- refused always: unspecified (``0.0.0.0``, ``::``, which reaches the host itself),
  link-local (``169.254.0.0/16``, cloud metadata included; ``fe80::/10``), multicast,
  reserved and every other range that is not globally routable (documentation,
  benchmarking, ``0.0.0.0/8``, ``240.0.0.0/4``, broadcast, ...);
- refused unless ``allow_private`` (setting ``webhook_allow_private_targets``, for
  development and the test suite): loopback (``127.0.0.0/8``, ``::1``), private
  (RFC 1918, IPv6 unique-local ``fc00::/7``, site-local) and the carrier-grade NAT range
  ``100.64.0.0/10``.

IPv6 addresses that embed an IPv4 one (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4)
are judged by the IPv4 address they reach.

A name is judged by every address it resolves to: one refused address refuses the name
(a name with a public and a private record would otherwise reach the private one on some
attempts). The check at configuration time (:func:`check_url`) only helps the operator:
DNS may answer differently later (DNS rebinding). What protects is the check at connect
time: resolve once with :func:`allowed_addresses`, then connect to one of *those*
addresses, never to the name again (``adapters.webhooks.HttpSender`` does so, and so do
the SFTP and SMTP delivery targets in ``adapters.transfer``, with their own setting
``delivery_allow_private_targets``; :func:`check_host` is their configuration-time check).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LOOPBACK = "loopback"
PRIVATE = "private"
SHARED = "shared (carrier-grade NAT)"
# What `allow_private` lets through; every other kind is refused always.
PRIVATE_KINDS = frozenset({LOOPBACK, PRIVATE, SHARED})

_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fec0::/10")
)
_SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
_NAT64_NETWORK = ipaddress.ip_network("64:ff9b::/96")
_BROADCAST = ipaddress.ip_address("255.255.255.255")


class TargetRefused(ValueError):
    """The URL's host is, or resolves to, an address Recaudo must not call.

    The message names the host, the address and its kind; it holds nothing secret.
    """


class TargetUnresolved(OSError):
    """The host name does not resolve (now)."""


def kind_of(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address (``"loopback"``, ``"private"``,
    ``"link-local"``, ...), or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64_NETWORK:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return kind_of(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address == _BROADCAST:
        return "broadcast"
    if any(address in network for network in _PRIVATE_NETWORKS):
        return PRIVATE
    if address in _SHARED_NETWORK:
        return SHARED
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "non-public"
    return None


def check_address(address: IPAddress, *, allow_private: bool, host: str | None = None) -> None:
    """Raise :class:`TargetRefused` unless Recaudo may connect to ``address``."""
    kind = kind_of(address)
    if kind is None or (allow_private and kind in PRIVATE_KINDS):
        return
    article = "an" if kind[0] in "aeiou" else "a"
    if host is None or ip_literal(host) is not None:
        raise TargetRefused(f"{address} is {article} {kind} address")
    raise TargetRefused(f"{host} resolves to {address}, {article} {kind} address")


def ip_literal(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is written as one (brackets and zone removed)."""
    text = host.strip("[]").partition("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every TCP address of ``host``, in the resolver's order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # also a NUL or a too-long label
        raise TargetUnresolved(f"{host} does not resolve") from exc
    found: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in found:
            found.append(address)
    if not found:
        raise TargetUnresolved(f"{host} does not resolve")
    return found


def allowed_addresses(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host`` once and check every address; connect only to those returned.

    Raises :class:`TargetRefused` when any address is refused, :class:`TargetUnresolved`
    when there is none.
    """
    literal = ip_literal(host)
    addresses = [literal] if literal is not None else resolve(host, port)
    for address in addresses:
        check_address(address, allow_private=allow_private, host=host)
    return addresses


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is, or now resolves to, a refused address.

    A name that does not resolve now is let through: the check at every connection
    decides anyway, and a company may register its URL before its DNS is published.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # not a URL: the caller's syntax check reports it
    if not host:
        return
    check_host(host, port, allow_private=allow_private)


def check_host(host: str, port: int, *, allow_private: bool) -> None:
    """Refuse a host (name or IP address) that is, or now resolves to, a refused address:
    :func:`check_url` for a bare host and port (SFTP and SMTP delivery targets).

    A name that does not resolve now is let through, as by :func:`check_url`.
    """
    name = host.rstrip(".")
    if ip_literal(host) is None and (name == "localhost" or name.endswith(".localhost")):
        # Always loopback (RFC 6761), whatever a resolver says.
        if not allow_private:
            raise TargetRefused(f"{host} is a loopback name")
        return
    try:
        allowed_addresses(host, port, allow_private=allow_private)
    except TargetUnresolved:
        return
