"""How the settings turn into the ledger's collaborators: the signing key, the chain gateway
and the reconciliation options. Shared by the app, the jobs and the `market` command."""

from __future__ import annotations

from datetime import timedelta

from ledger.chain import ChainGateway, Web3ChainGateway
from ledger.cosignature import Cosigner
from ledger.keys import load_signer
from ledger.note import NoteSigner
from ledger.recognition import Web3ConsortiumReader
from ledger.reconcile import ReconcileOptions, RecordSource
from ledger.witness_keys import load_cosigner
from listings.ledger_records import AuthorizationRecords, RegistrationRecords, RegistryRecords
from market.peering.ledger_records import PeerRecords, RecognitionRecords
from market.settings import Settings
from market.trading.ledger_records import (
    ClearanceRecords,
    ConnectedAccountRecords,
    OrderRecords,
    RefundRecords,
)
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
            PeerRecords(), RecognitionRecords(), OrderRecords(), RefundRecords(),
            ClearanceRecords(), ConnectedAccountRecords()]


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
