"""What this exchange reads of a peer's public registry (`GET /registry/{code}` there): the
fields recognition and the watch need, decoded strictly so a malformed answer is refused."""

from __future__ import annotations

from uuid import UUID

import httpx
import msgspec

from ledger.recognition import RecognitionError, fetch_from_peer


class Labelled(msgspec.Struct):
    value: str


class RegistrationDataWire(msgspec.Struct):
    subject_kind: Labelled
    holder: str
    title: str
    description: str
    data_source: str
    domain: Labelled
    update_cycle: Labelled
    permitted_purposes: list[Labelled]
    security_measures: str
    grade: Labelled


class RegistrationWire(msgspec.Struct):
    id: UUID
    data: RegistrationDataWire
    target_code: str | None


class RegistryEventWire(msgspec.Struct):
    registration_id: UUID
    step: str
    leaf_index: int


class QualityWire(msgspec.Struct):
    completeness: int
    accuracy: int
    timeliness: int
    usability: int
    machine_readability: int


class ProductWire(msgspec.Struct):
    id: UUID
    operator_name: str
    source_resource_codes: list[str]
    delivery_form: Labelled
    quality: QualityWire
    scenario: str | None
    state: Labelled
    delisting_reason: str


class RegistryEntryWire(msgspec.Struct):
    code: str
    state: str
    cancelled_on: str | None
    current: RegistrationWire
    history: list[RegistryEventWire]
    products: list[ProductWire]

    def listed_products(self) -> list[ProductWire]:
        return [product for product in self.products if product.state.value == "listed"]


async def fetch_registry_entry(client: httpx.AsyncClient, api_base_url: str,
                               code: str) -> RegistryEntryWire:
    url = f"{api_base_url.rstrip('/')}/registry/{code}"
    response = await fetch_from_peer(client, url)
    try:
        return msgspec.json.decode(response.content, type=RegistryEntryWire)
    except msgspec.ValidationError as error:
        raise RecognitionError(f"GET {url}: not a registry entry: {error}") from error
    except msgspec.DecodeError as error:
        raise RecognitionError(f"GET {url}: not JSON") from error
