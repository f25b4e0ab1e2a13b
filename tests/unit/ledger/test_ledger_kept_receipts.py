"""A public bundle route asks the chain once per anchor: confirmed anchor events and the chain
id are kept, a missing event is not, and the kept set stays within its bound."""

from __future__ import annotations

from typing import ClassVar

from ledger.bundles import AnchorLog, KeptAnchorReceipts


class CountingReceipts:
    """Each instance is one reach to the node; the class counts them all."""

    calls: ClassVar[list[str]] = []
    closed: ClassVar[int] = 0

    async def chain_id(self) -> int:
        CountingReceipts.calls.append("chain_id")
        return 31337

    async def anchored_log(self, tx_hash: bytes) -> AnchorLog | None:
        CountingReceipts.calls.append(tx_hash.hex())
        if tx_hash == b"\x00":
            return None
        return AnchorLog("0x" + "11" * 20, (tx_hash,), b"", 7, tx_hash, 0)

    async def close(self) -> None:
        CountingReceipts.closed += 1


async def test_events_and_chain_id_are_read_once_and_missing_events_again() -> None:
    CountingReceipts.calls, CountingReceipts.closed = [], 0
    kept = KeptAnchorReceipts(CountingReceipts, max_kept=2)
    assert await kept.chain_id() == await kept.chain_id() == 31337
    first = await kept.anchored_log(b"\x01")
    assert first is not None
    assert await kept.anchored_log(b"\x01") == first
    assert await kept.anchored_log(b"\x00") is None
    assert await kept.anchored_log(b"\x00") is None
    assert CountingReceipts.calls == ["chain_id", "01", "00", "00"]
    # Every reach to the node is closed after it.
    assert CountingReceipts.closed == 4

    # Beyond its bound the least recently used event is dropped and read again when asked.
    await kept.anchored_log(b"\x02")
    await kept.anchored_log(b"\x03")
    await kept.anchored_log(b"\x01")
    assert CountingReceipts.calls[-3:] == ["02", "03", "01"]
