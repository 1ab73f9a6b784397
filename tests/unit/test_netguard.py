"""The address policy for URLs Recaudo calls on a company's behalf (adapters.netguard)."""

from __future__ import annotations

import ipaddress

import pytest

from recaudo.adapters import netguard


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("100.127.255.254", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "link-local"),
        ("169.254.0.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("0.1.2.3", "non-public"),
        ("192.0.2.1", "non-public"),
        ("198.18.0.1", "non-public"),
        ("2001:db8::1", "non-public"),
        # IPv6 forms of IPv4 addresses are judged by the IPv4 address they reach.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:7f00:1::", "loopback"),
        # Public.
        ("8.8.8.8", None),
        ("172.32.0.1", None),
        ("100.128.0.1", None),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_kind_of(address: str, kind: str | None) -> None:
    assert netguard.kind_of(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("address", "allowed_with_private"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("fd00::1", True),
        ("100.64.0.1", True),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
    ],
)
def test_check_address(address: str, allowed_with_private: bool) -> None:
    ip = ipaddress.ip_address(address)
    with pytest.raises(netguard.TargetRefused):
        netguard.check_address(ip, allow_private=False)
    if allowed_with_private:
        netguard.check_address(ip, allow_private=True)
    else:
        with pytest.raises(netguard.TargetRefused):
            netguard.check_address(ip, allow_private=True)
    netguard.check_address(ipaddress.ip_address("8.8.8.8"), allow_private=False)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8000/x", "127.0.0.1 is a loopback address"),
        ("http://[::1]/x", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]/x", "::ffff:7f00:1 is a loopback address"),
        ("http://localhost/x", "localhost is a loopback name"),
        ("http://LOCALHOST./x", "localhost. is a loopback name"),
        ("http://db.localhost:5432/x", "db.localhost is a loopback name"),
        # Spellings the resolver turns into 127.0.0.1.
        ("http://2130706433/x", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1/x", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
        ("http://127.1/x", "127.1 resolves to 127.0.0.1, a loopback address"),
        ("https://169.254.169.254/latest/", "169.254.169.254 is a link-local address"),
    ],
)
def test_check_url_refuses(url: str, message: str) -> None:
    with pytest.raises(netguard.TargetRefused) as info:
        netguard.check_url(url, allow_private=False)
    assert str(info.value) == message


def test_check_url_accepts_public_and_unresolvable_hosts() -> None:
    netguard.check_url("https://93.184.215.14/hooks", allow_private=False)
    netguard.check_url("https://[2606:4700:4700::1111]:8443/hooks", allow_private=False)
    netguard.check_url("https://billing.example.invalid/hooks", allow_private=False)
    netguard.check_url("http://localhost:8000/hooks", allow_private=True)


def test_allowed_addresses_resolves_once_and_checks_every_address() -> None:
    assert netguard.allowed_addresses("127.0.0.1", 80, allow_private=True) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    assert ipaddress.ip_address("127.0.0.1") in netguard.allowed_addresses(
        "localhost", 80, allow_private=True
    )
    with pytest.raises(netguard.TargetRefused) as info:
        netguard.allowed_addresses("localhost", 80, allow_private=False)
    assert str(info.value).startswith("localhost resolves to ")
    with pytest.raises(netguard.TargetUnresolved):
        netguard.allowed_addresses("nothing.example.invalid", 443, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["http://[::1/x", "http://host:99999/", "http://a\x00b/", "http://" + "a" * 300 + "/", "x"],
)
def test_check_url_leaves_malformed_urls_to_the_syntax_check(url: str) -> None:
    netguard.check_url(url, allow_private=False)  # no exception of its own
