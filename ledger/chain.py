"""The consortium chain: a `ChainGateway` protocol, its web3.py adapter, and the code outbox.

The gateway is deliberately low level — sign, broadcast, read a receipt, read the contract —
so that the outbox logic (ledger.anchoring) owns the order of events and can store every
signed transaction before it is broadcast. That is what makes "nothing sent twice" hold across
crashes: a retry re-broadcasts the same signed bytes (same nonce), which a chain mines once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)

from contracts import load_artifact
from ledger.tables import LedgerLeaf

logger = logging.getLogger("ledger.chain")

T = TypeVar("T")

MAX_CODE_BYTES = 128  # ExchangeLedger.MAX_CODE_LENGTH


class ChainUnavailableError(RuntimeError):
    """The chain node did not answer (after retries); try again later."""


class ChainRejectedError(RuntimeError):
    """The contract refuses the call (a revert found while estimating gas)."""

    def __init__(self, message: str, *, error_name: str | None = None) -> None:
        super().__init__(message)
        self.error_name = error_name


@dataclass(frozen=True)
class CodeRegistration:
    code: str
    leaf_index: int
    leaf_hash: bytes


@dataclass(frozen=True)
class SignedTransaction:
    sender: str
    nonce: int
    tx_hash: bytes
    raw: bytes


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    succeeded: bool
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class CodeOnChain:
    exchange: str
    leaf_index: int
    leaf_hash: bytes


class ChainGateway(Protocol):
    """What the ledger needs from the ExchangeLedger contract and its chain."""

    @property
    def sender(self) -> str: ...

    async def next_nonce(self) -> int: ...

    async def sign_anchor(self, tree_size: int, root: bytes, nonce: int) -> SignedTransaction: ...

    async def sign_register_codes(self, codes: Sequence[CodeRegistration],
                                  nonce: int) -> SignedTransaction: ...

    async def broadcast(self, signed: SignedTransaction) -> None: ...

    async def receipt(self, tx_hash: bytes) -> Receipt | None: ...

    async def block_number(self) -> int: ...

    async def latest_anchor(self) -> tuple[int, bytes]: ...

    async def anchored_root(self, tree_size: int) -> bytes | None: ...

    async def lookup_code(self, code: str) -> CodeOnChain | None: ...


async def queue_code_registration(code: str, leaf_index: int, leaf_hash: bytes) -> None:
    """Queue `code` for the on-chain registry, inside the caller's transaction (the one that
    assigns the code and appends its leaf), so the code reaches the chain if and only if the
    assignment commits. The anchor task sends queued codes in batches."""
    engine = LedgerLeaf._meta.db
    if engine.current_transaction.get() is None:
        raise RuntimeError("queue_code_registration must run inside the caller's transaction")
    if not code or len(code.encode("utf-8")) > MAX_CODE_BYTES:
        raise ValueError(f"a registration code is 1…{MAX_CODE_BYTES} bytes")
    if len(leaf_hash) != 32 or leaf_index < 0:
        raise ValueError("a code names a leaf by its index and 32-byte leaf hash")
    await LedgerLeaf.raw(
        "INSERT INTO ledger_code_registrations (code, leaf_index, leaf_hash) VALUES ({}, {}, {})",
        code, leaf_index, leaf_hash).run()


# Errors that mean "the node did not answer", as opposed to an answer we dislike.
_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, asyncio.TimeoutError, aiohttp.ClientError, ProviderConnectionError,
    TimeExhausted)


class Web3ChainGateway:
    """`ChainGateway` over JSON-RPC with web3.py, signing locally with the exchange's key.

    Each call is retried `attempts` times with exponential backoff on transport errors only;
    a revert or an RPC error answer is never retried blindly.
    """

    def __init__(self, rpc_url: str, private_key: str, contract_address: str, *,
                 attempts: int = 3, backoff_s: float = 0.25, gas_margin_percent: int = 20,
                 request_timeout_s: float = 10.0) -> None:
        self._w3 = AsyncWeb3(AsyncWeb3.AsyncHTTPProvider(
            rpc_url, request_kwargs={"timeout": request_timeout_s},
            exception_retry_configuration=None))
        self._account = Account.from_key(private_key)
        artifact = load_artifact("ExchangeLedger")
        self._contract = self._w3.eth.contract(
            address=AsyncWeb3.to_checksum_address(contract_address), abi=artifact.abi)
        self._errors_by_selector = {
            bytes(function_abi_to_4byte_selector(entry)): entry  # type: ignore[arg-type]
            for entry in artifact.abi if entry["type"] == "error"}
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._gas_margin_percent = gas_margin_percent
        self._chain_id: int | None = None

    @property
    def sender(self) -> str:
        return str(self._account.address)

    async def close(self) -> None:
        await self._w3.provider.disconnect()

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        delay = self._backoff_s
        for attempt in range(1, self._attempts + 1):
            try:
                return await call()
            except _TRANSPORT_ERRORS as error:
                if attempt == self._attempts:
                    raise ChainUnavailableError(
                        f"{what}: chain node unreachable after {attempt} attempts "
                        f"({type(error).__name__})") from error
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover — the loop returns or raises

    async def ping(self) -> None:
        await self._call("ping", lambda: self._w3.eth.chain_id)

    async def next_nonce(self) -> int:
        return int(await self._call("nonce", lambda: self._w3.eth.get_transaction_count(
            self._account.address, "pending")))

    async def block_number(self) -> int:
        return int(await self._call("block number", lambda: self._w3.eth.block_number))

    async def _sign(self, function: Any, nonce: int) -> SignedTransaction:
        if self._chain_id is None:
            self._chain_id = int(await self._call("chain id", lambda: self._w3.eth.chain_id))
        sender = self._account.address
        try:
            gas = await self._call("estimate gas", lambda: function.estimate_gas({"from": sender}))
        except ContractCustomError as error:
            raise self._rejected(error) from error
        except ContractLogicError as error:
            raise ChainRejectedError(f"the contract refuses the call: {error}") from error
        transaction = await self._call("build transaction", lambda: function.build_transaction({
            "from": sender, "nonce": nonce, "chainId": self._chain_id,
            # Estimation is exact for the state it ran on; the margin absorbs state that moves
            # before the transaction is mined.
            "gas": gas * (100 + self._gas_margin_percent) // 100}))
        signed = self._account.sign_transaction(transaction)
        return SignedTransaction(sender, nonce, bytes(signed.hash), bytes(signed.raw_transaction))

    def _rejected(self, error: ContractCustomError) -> ChainRejectedError:
        data = HexBytes(error.data if isinstance(error.data, str) else b"")
        entry = self._errors_by_selector.get(bytes(data[:4]))
        if entry is None:
            return ChainRejectedError(f"the contract refuses the call: {error}")
        values = abi_decode(get_abi_input_types(entry),  # type: ignore[arg-type]
                            bytes(data[4:]))
        return ChainRejectedError(f"the contract refuses the call: {entry['name']}{values!r}",
                                  error_name=str(entry["name"]))

    async def sign_anchor(self, tree_size: int, root: bytes, nonce: int) -> SignedTransaction:
        return await self._sign(self._contract.functions.anchor(tree_size, root), nonce)

    async def sign_register_codes(self, codes: Sequence[CodeRegistration],
                                  nonce: int) -> SignedTransaction:
        function = self._contract.functions.registerCodes(
            [item.code for item in codes], [item.leaf_index for item in codes],
            [item.leaf_hash for item in codes])
        return await self._sign(function, nonce)

    async def broadcast(self, signed: SignedTransaction) -> None:
        try:
            await self._call("broadcast", lambda: self._w3.eth.send_raw_transaction(signed.raw))
        except Web3RPCError as error:
            message = str(error).lower()
            # The node already holds or has mined these very bytes: a re-broadcast after a
            # crash or a lost answer, which is exactly the case the outbox expects.
            if "already known" in message or "nonce too low" in message:
                logger.info("transaction %s was already broadcast", signed.tx_hash.hex())
                return
            raise

    async def receipt(self, tx_hash: bytes) -> Receipt | None:
        async def fetch() -> Any:
            try:
                return await self._w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except TransactionNotFound:
                return None

        found = await self._call("receipt", fetch)
        if found is None:
            return None
        return Receipt(tx_hash, found["status"] == 1, int(found["blockNumber"]),
                       int(found["gasUsed"]))

    async def latest_anchor(self) -> tuple[int, bytes]:
        size, root = await self._call("latest anchor", lambda: self._contract.functions
                                      .latestAnchor(self._account.address).call())
        return int(size), bytes(root)

    async def anchored_root(self, tree_size: int) -> bytes | None:
        root = await self._call("anchored root", lambda: self._contract.functions
                                .anchoredRoot(self._account.address, tree_size).call())
        return None if bytes(root) == bytes(32) else bytes(root)

    async def lookup_code(self, code: str) -> CodeOnChain | None:
        exchange, leaf_index, leaf_hash, registered = await self._call(
            "lookup code", lambda: self._contract.functions.lookupCode(code).call())
        if not registered:
            return None
        return CodeOnChain(str(exchange), int(leaf_index), bytes(leaf_hash))
