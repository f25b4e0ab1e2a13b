"""The buyer's side of an offer's price: within the demand's budget for the offered unit. The
same rule holds for an offer made here and for one a peer exchange sends back."""

from __future__ import annotations

from listings.domains import ChargingUnit
from market.errors import InvalidInputError
from market.trading.matching import Demand


def check_within_budget(demand: Demand, unit: ChargingUnit, price_minor: int, *,
                        unit_field: str = "unit", price_field: str = "price_minor") -> None:
    budget = demand.budget_for(unit)
    if budget is None:
        raise InvalidInputError(f"the buyer's budget does not accept {unit.value} pricing",
                                field=unit_field)
    # Conditionally free use (有条件无偿) lists at 0, so any budget fits it.
    if not demand.purpose.is_conditionally_free and price_minor > budget:
        raise InvalidInputError(f"above the buyer's budget of {budget} fen per {unit.value}",
                                field=price_field)
