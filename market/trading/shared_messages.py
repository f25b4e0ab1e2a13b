"""Messages between exchanges about shared demand (一地提出,全国响应: issue 7 §4), signed as
EIP-712 typed data (CONVENTIONS §9) with each exchange's consortium chain key.

Three messages travel between a demand's exchange (the origin) and a peer:

* ``SharedDemand`` (origin → peer): one version of a public-pool demand. A later version (a
  state change: matched, closed) replaces an earlier one; the buyer is never named.
* ``SharedOffer`` (peer → origin): a peer operator's offer of one of its listed products.
* ``OfferDecision`` (origin → peer): the buyer accepted or declined that offer.

Every message names its ``origin`` (the sender's ledger origin) and its ``recipient`` (the
receiver's), so a message sent to one exchange cannot be passed on to another as if addressed to
it. The EIP-712 domain is the consortium's: the chain id and the ExchangeLedger contract, which
every member shares, so a signature made for another chain or consortium does not verify here.
The receiver recovers the signer and compares it with the chain address the consortium admitted
for the sending origin (``recover_signer``); nothing else about the sender is taken on its word.

This module is pure: no I/O, only encoding, signing and recovery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import msgspec
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data

from ledger.canonical import canonical_json

DOMAIN_NAME = "PublicDataExchangeConsortium"
DOMAIN_VERSION = "1"
# JSON numbers past 2**63 lose precision in many peers' decoders; uint64 fields stay below it.
MAX_WIRE_INTEGER = 2**63 - 1

UInt64 = Annotated[int, msgspec.Meta(ge=0, le=MAX_WIRE_INTEGER)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_WIRE_INTEGER)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]


class SignatureError(ValueError):
    """A signature is malformed or does not recover to an address."""


@dataclass(frozen=True)
class SigningDomain:
    """The consortium's EIP-712 domain: one chain, one ExchangeLedger contract."""

    chain_id: int
    verifying_contract: str

    def typed(self) -> dict[str, Any]:
        return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": self.chain_id,
                "verifyingContract": self.verifying_contract}


_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


class UnitBudget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    unit: ShortText
    amount_minor: Amount


class SharedDemand(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """One version of a public-pool demand, as its exchange shares it. Budgets: the most the
    buyer pays per unit in minor units of ``currency``; ``unit_budgets`` for named units, and
    ``budget_minor_per_unit`` for any other unit when ``has_budget_per_unit``."""

    TYPE_NAME: ClassVar[str] = "SharedDemand"

    origin: ShortText
    recipient: ShortText
    demand_id: ShortText
    version: UInt64
    state: ShortText
    close_reason: ShortText
    title: Text
    description: Text
    domains: list[ShortText]
    purpose: ShortText
    has_budget_per_unit: bool
    budget_minor_per_unit: Amount
    unit_budgets: list[UnitBudget]
    currency: ShortText
    delivery_forms: list[ShortText]
    grade_clearance: ShortText
    deadline: ShortText
    issued_at: UInt64


class SharedOffer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """A peer operator's offer on a shared demand, at the offering exchange's list price or
    below (so within its cap) and within the buyer's budget."""

    TYPE_NAME: ClassVar[str] = "SharedOffer"

    origin: ShortText
    recipient: ShortText
    demand_id: ShortText
    demand_version: UInt64
    offer_id: ShortText
    exchange_name: ShortText
    product_id: ShortText
    product_title: Text
    operator_id: ShortText
    operator_name: ShortText
    registration_code: ShortText
    delivery_form: ShortText
    purpose: ShortText
    unit: ShortText
    price_minor: Amount
    currency: ShortText
    message: Text
    issued_at: UInt64


class OfferDecision(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """The buyer's decision on an offer, sent by the demand's exchange to the offering one."""

    TYPE_NAME: ClassVar[str] = "OfferDecision"

    origin: ShortText
    recipient: ShortText
    demand_id: ShortText
    offer_id: ShortText
    decision: ShortText
    reason: Text
    issued_at: UInt64


PeerMessage = SharedDemand | SharedOffer | OfferDecision

# Solidity types of each field, in field order (EIP-712 encodes members in declared order).
_FIELD_TYPES: dict[str, dict[str, str]] = {
    "UnitBudget": {"unit": "string", "amountMinor": "uint256"},
    "SharedDemand": {
        "origin": "string", "recipient": "string", "demandId": "string", "version": "uint64",
        "state": "string", "closeReason": "string", "title": "string", "description": "string",
        "domains": "string[]", "purpose": "string", "hasBudgetPerUnit": "bool",
        "budgetMinorPerUnit": "uint256", "unitBudgets": "UnitBudget[]", "currency": "string",
        "deliveryForms": "string[]", "gradeClearance": "string", "deadline": "string",
        "issuedAt": "uint64"},
    "SharedOffer": {
        "origin": "string", "recipient": "string", "demandId": "string",
        "demandVersion": "uint64", "offerId": "string", "exchangeName": "string",
        "productId": "string", "productTitle": "string", "operatorId": "string",
        "operatorName": "string", "registrationCode": "string", "deliveryForm": "string",
        "purpose": "string", "unit": "string", "priceMinor": "uint256", "currency": "string",
        "message": "string", "issuedAt": "uint64"},
    "OfferDecision": {
        "origin": "string", "recipient": "string", "demandId": "string", "offerId": "string",
        "decision": "string", "reason": "string", "issuedAt": "uint64"},
}
_MESSAGE_CLASSES: dict[str, type[PeerMessage]] = {
    cls.TYPE_NAME: cls for cls in (SharedDemand, SharedOffer, OfferDecision)}


def _types_for(type_name: str) -> dict[str, list[dict[str, str]]]:
    types = {"EIP712Domain": _DOMAIN_TYPE}
    for name in (type_name, "UnitBudget") if type_name == "SharedDemand" else (type_name,):
        types[name] = [{"name": key, "type": kind} for key, kind in _FIELD_TYPES[name].items()]
    return types


def typed_data(message: PeerMessage, domain: SigningDomain) -> dict[str, Any]:
    """The full EIP-712 document of ``message`` (what a wallet or any EIP-712 tool signs)."""
    return {"types": _types_for(message.TYPE_NAME), "primaryType": message.TYPE_NAME,
            "domain": domain.typed(), "message": msgspec.to_builtins(message)}


def _signable(message: PeerMessage, domain: SigningDomain) -> SignableMessage:
    return encode_typed_data(full_message=typed_data(message, domain))


def sign(message: PeerMessage, domain: SigningDomain, private_key: str) -> str:
    """The 65-byte signature (r ‖ s ‖ v) as 0x-hex."""
    signed = Account.sign_message(_signable(message, domain), private_key)
    return "0x" + bytes(signed.signature).hex()


def recover_signer(message: PeerMessage, domain: SigningDomain, signature: str) -> str:
    """The checksum address that signed ``message`` under ``domain``; any signature recovers to
    some address, so the caller compares it with the one it expects."""
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SignatureError("the signature is not hex") from None
    if len(raw) != 65:
        raise SignatureError("the signature must be 65 bytes (r, s, v)")
    try:
        return str(Account.recover_message(_signable(message, domain), signature=raw))
    except Exception as error:  # eth_keys raises several types for a bad (r, s, v)
        raise SignatureError(f"the signature does not recover: {type(error).__name__}") from None


def digest(message: PeerMessage) -> str:
    """SHA-256 of the message's RFC 8785 JSON: tells a re-delivery of the same message from
    another message that reuses its identity."""
    return hashlib.sha256(canonical_json(msgspec.to_builtins(message))).hexdigest()


class SignedEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What travels over HTTP: the message and its signature, both as the receiver checks them."""

    message: dict[str, Any]
    signature: Annotated[str, msgspec.Meta(max_length=200)]


def decode(type_name: str, raw: dict[str, Any]) -> PeerMessage:
    """The message of ``type_name`` in ``raw`` (a JSON object), or ``msgspec.ValidationError``
    naming the field at fault."""
    return msgspec.convert(raw, _MESSAGE_CLASSES[type_name])


def envelope(message: PeerMessage, signature: str) -> dict[str, Any]:
    return {"message": msgspec.to_builtins(message), "signature": signature}
