"""Who this exchange is to its peers when it shares demand, and who its peers are.

``ExchangeIdentity`` holds what signing and checking messages between exchanges needs: the
ledger origin (the exchange's name in the consortium), its display name, its chain key and the
consortium's EIP-712 domain. Sharing is on only when the exchange has a chain key and knows the
ExchangeLedger contract; the chain id comes from the settings, or else is asked of the node once.

``PeerDirectory`` and ``RefusalLog`` are the parts of the peer directory (market.peering) that
sharing uses, so that the use cases take them as collaborators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eth_account import Account
from web3 import AsyncWeb3

from market.ledger_wiring import ledger_signer
from market.settings import Settings
from market.trading.shared_messages import SigningDomain

_chain_ids: dict[str, int] = {}


@dataclass(frozen=True)
class ExchangeIdentity:
    origin: str
    name: str
    private_key: str = field(repr=False)
    domain: SigningDomain

    @property
    def address(self) -> str:
        return str(Account.from_key(self.private_key).address)


async def _chain_id(settings: Settings) -> int | None:
    if settings.chain_id is not None:
        return settings.chain_id
    if settings.chain_rpc_url is None:
        return None
    if settings.chain_rpc_url not in _chain_ids:
        w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(settings.chain_rpc_url))
        try:
            _chain_ids[settings.chain_rpc_url] = int(await w3.eth.chain_id)
        finally:
            await w3.provider.disconnect()
    return _chain_ids[settings.chain_rpc_url]


async def identity_from_settings(settings: Settings) -> ExchangeIdentity | None:
    """This exchange's identity, or None when it is not set up to share demand."""
    if settings.chain_private_key is None or settings.ledger_contract_address is None:
        return None
    chain_id = await _chain_id(settings)
    if chain_id is None:
        return None
    return ExchangeIdentity(
        origin=ledger_signer(settings).name, name=settings.exchange_name,
        private_key=settings.chain_private_key,
        domain=SigningDomain(chain_id, AsyncWeb3.to_checksum_address(
            settings.ledger_contract_address)))


class KnownPeer(Protocol):
    """A peer exchange as the directory knows it."""

    @property
    def origin(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def chain_address(self) -> str: ...

    @property
    def api_base_url(self) -> str: ...

    @property
    def state(self) -> str: ...


class PeerDirectory(Protocol):
    async def active_peers(self) -> Sequence[KnownPeer]: ...

    async def peer_by_origin(self, origin: str) -> KnownPeer | None: ...


class RefusalLog(Protocol):
    async def record_refusal(self, kind: str, reason: str, *, peer_origin: str | None,
                             evidence: dict[str, object]) -> None: ...


def evidence(message: Mapping[str, object], signature: str) -> dict[str, object]:
    """What staff need to see of a refused message: the message as received and its signature."""
    return {"message": dict(message), "signature": signature}
