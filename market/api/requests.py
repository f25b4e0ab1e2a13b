"""The request class: JSON decoding that names the field of a number no JSON decoder can hold."""

from __future__ import annotations

import json
import math
from typing import Any

from litestar import Request
from litestar.exceptions import SerializationException, ValidationException


class ExchangeRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except SerializationException as error:
            # msgspec refuses a number beyond a double's range (e.g. 1e400) without saying
            # where it was; find it, so the problem names the field as for any other bad value.
            field = _path_of_unrepresentable_number(await self.body())
            if field is None:
                raise
            raise ValidationException(
                "Number out of range",
                extra=[{"message": "Number out of range", "key": field, "source": "body"}],
            ) from error


def _path_of_unrepresentable_number(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return _find_infinite(document, "")


def _find_infinite(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path or None
    children: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        children = [(f"{path}.{key}" if path else str(key), item) for key, item in value.items()]
    elif isinstance(value, list):
        children = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    for child_path, child in children:
        found = _find_infinite(child, child_path)
        if found is not None:
            return found
    return None
