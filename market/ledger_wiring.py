"""How the settings turn into the ledger's collaborators: the signing key, the chain gateway,
the reconciliation options and the exchange's identity to its peers. Shared by the app, the jobs
and the `market` command."""

from __future__ import annotations

from datetime import timedelta

from web3 import AsyncWeb3

from ledger.chain import ChainGateway, Web3ChainGateway
from ledger.cosignature import Cosigner
from ledger.keys import load_signer
from ledger.note import NoteSigner
from ledger.recognition import Web3ConsortiumReader
from ledger.reconcile import ReconcileOptions, RecordSource
from ledger.witness_keys import load_cosigner
from listings.ledger_records import AuthorizationRecords, RegistrationRecords, RegistryRecords
from market.peering.ledger_records import PeerRecords, PeerStateRecords, RecognitionRecords
from market.settings import Settings
from market.trading.demand_ledger_records import DemandOfferRecords, DemandRecords
from market.trading.ledger_records import (
    ClearanceRecords,
    ConnectedAccountRecords,
    OrderRecords,
    RefundRecords,
)
from market.trading.shared_identity import ExchangeIdentity
from market.trading.shared_ledger_records import (
    ForeignOfferRecords,
    PeerDemandRecords,
    PeerOfferRecords,
)
from market.trading.shared_messages import SigningDomain
from settlement.ledger_records import (
    EligibilityRecords,
    FeeCapRecords,
    JournalRecords,
    PayoutRecords,
    RevenueCeilingRecords,
)


def record_sources() -> list[RecordSource]:
    """Every domain record the exchange logs, for reconciliation against its leaves."""
    return [AuthorizationRecords(), RegistrationRecords(), RegistryRecords(), JournalRecords(),
            FeeCapRecords(), RevenueCeilingRecords(), EligibilityRecords(), PayoutRecords(),
            PeerRecords(), PeerStateRecords(), RecognitionRecords(), OrderRecords(),
            RefundRecords(), ClearanceRecords(), ConnectedAccountRecords(), DemandRecords(),
            DemandOfferRecords(), ForeignOfferRecords(), PeerDemandRecords(), PeerOfferRecords()]


def ledger_signer(settings: Settings) -> NoteSigner:
    return load_signer(origin=settings.ledger_origin, signing_key=settings.ledger_signing_key,
                       key_path=settings.ledger_key_path,
                       default_origin=f"{settings.host}:{settings.port}/ledger")


def witness_cosigner(settings: Settings) -> Cosigner:
    """The witness's cosigning key, separate from the ledger's signing key."""
    return load_cosigner(signing_key=settings.witness_signing_key,
                         key_path=settings.witness_key_path,
                         default_name=f"{settings.host}:{settings.port}/witness")


def chain_gateway(settings: Settings) -> Web3ChainGateway | None:
    """The exchange's chain gateway, or None when anchoring is not configured."""
    if (settings.chain_rpc_url is None or settings.chain_private_key is None
            or settings.ledger_contract_address is None):
        return None
    return Web3ChainGateway(settings.chain_rpc_url, settings.chain_private_key,
                            settings.ledger_contract_address)


def consortium_reader(settings: Settings) -> Web3ConsortiumReader | None:
    """A read-only view of the consortium contract, or None when no chain is configured."""
    if settings.chain_rpc_url is None or settings.ledger_contract_address is None:
        return None
    return Web3ConsortiumReader(settings.chain_rpc_url, settings.ledger_contract_address,
                                request_timeout_s=settings.peer_timeout_s)


def reconcile_options(settings: Settings) -> ReconcileOptions:
    def gateway() -> ChainGateway:
        configured = chain_gateway(settings)
        if configured is None:  # pragma: no cover — only built when anchoring is configured
            raise RuntimeError("anchoring is not configured")
        return configured

    return ReconcileOptions(
        verifier=ledger_signer(settings).verifier,
        gateway_factory=gateway if settings.anchoring_configured else None,
        unanchored_after=timedelta(minutes=settings.ledger_unanchored_alert_minutes),
        record_sources=record_sources())


_chain_ids: dict[str, int] = {}


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
    """This exchange's identity to its peers, or None when it is not set up to share demand:
    sharing needs a chain key and the ExchangeLedger contract; the chain id comes from the
    settings, or else is asked of the node once."""
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
