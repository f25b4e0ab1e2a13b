"""What peering reaches outside this database with, built from the settings: a read-only view
of the consortium contract and an HTTP client, both closed after use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from ledger.recognition import ConsortiumReader
from listings.context import OperatorDirectory
from market.ledger_wiring import consortium_reader
from market.operator_directory import AccountsOperatorDirectory
from market.settings import Settings


@dataclass(frozen=True)
class PeerLinks:
    reader: ConsortiumReader
    client: httpx.AsyncClient
    own_code_issuer: str
    operators: OperatorDirectory


@asynccontextmanager
async def open_peer_links(settings: Settings) -> AsyncIterator[PeerLinks | None]:
    """The links, or None when no consortium chain is configured (peering is then off)."""
    reader = consortium_reader(settings)
    if reader is None:
        yield None
        return
    try:
        async with httpx.AsyncClient(timeout=settings.peer_timeout_s) as client:
            yield PeerLinks(reader=reader, client=client, own_code_issuer=settings.code_issuer,
                            operators=AccountsOperatorDirectory())
    finally:
        await reader.close()
