"""Who this exchange is to its peers when it shares demand, and who its peers are.

``ExchangeIdentity`` holds what signing and checking messages between exchanges needs: the
ledger origin (the exchange's name in the consortium), its display name, its chain key and the
consortium's EIP-712 domain; ``market.ledger_wiring.identity_from_settings`` builds it from the
settings.

``PeerDirectory`` and ``RefusalLog`` are the parts of the peer directory (market.peering) that
sharing uses, so that the use cases take them as collaborators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from eth_account import Account

from market.trading.shared_messages import SigningDomain


@dataclass(frozen=True)
class ExchangeIdentity:
    origin: str
    name: str
    private_key: str = field(repr=False)
    domain: SigningDomain

    @property
    def address(self) -> str:
        return str(Account.from_key(self.private_key).address)


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
