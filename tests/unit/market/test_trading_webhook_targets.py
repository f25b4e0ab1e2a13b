"""Which addresses a webhook may be delivered to, and the request pinned to a checked one."""

from __future__ import annotations

import ipaddress

import pytest

from market.trading.webhook_targets import (
    PrivateTargetError,
    Resolver,
    is_public,
    pinned_request,
    public_address,
)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0",  # noqa: S104 -- an address to classify, nothing binds to it
        "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "ff02::1",
    ],
)
def test_private_loopback_link_local_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::6810:84e5",
                                     "::ffff:93.184.215.14"])
def test_global_unicast_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def _resolver(*answers: str) -> Resolver:
    async def resolve(_host: str, _port: int) -> list[str]:
        return list(answers)

    return resolve


async def test_the_first_answer_is_used_when_every_answer_is_public() -> None:
    address = await public_address("hooks.example", 443, _resolver("93.184.215.14", "8.8.8.8"))
    assert address == ipaddress.ip_address("93.184.215.14")


@pytest.mark.parametrize("answers", [("93.184.215.14", "10.0.0.5"), ("fe80::1%eth0",), ()])
async def test_one_private_answer_or_none_at_all_is_refused(answers: tuple[str, ...]) -> None:
    with pytest.raises(PrivateTargetError):
        await public_address("hooks.example", 443, _resolver(*answers))


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    async def failing(_host: str, _port: int) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(PrivateTargetError):
        await public_address("nowhere.invalid", 80, failing)


async def test_an_ip_literal_is_judged_as_itself() -> None:
    with pytest.raises(PrivateTargetError):
        await public_address("127.0.0.1", 80)


def test_the_pinned_request_goes_to_the_address_and_keeps_the_host() -> None:
    pinned = pinned_request("https://hooks.example/in?x=1", ipaddress.ip_address("8.8.8.8"))
    assert str(pinned.url) == "https://8.8.8.8/in?x=1"
    assert pinned.headers == {"Host": "hooks.example"}
    assert pinned.extensions == {"sni_hostname": "hooks.example"}

    plain = pinned_request("http://hooks.example:8080/in",
                           ipaddress.ip_address("2606:4700::6810:84e5"))
    assert str(plain.url) == "http://[2606:4700::6810:84e5]:8080/in"
    assert plain.headers == {"Host": "hooks.example:8080"}
    assert plain.extensions == {}
