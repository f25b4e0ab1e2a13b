"""MARKET_WEBHOOK_ALLOW_PRIVATE: off unless set, read as a boolean, refused when unreadable."""

from __future__ import annotations

import pytest

from market.settings import Settings, SettingsError


def test_private_webhook_addresses_are_refused_unless_allowed() -> None:
    assert Settings.from_env({}).webhook_allow_private is False
    assert Settings.from_env({"MARKET_WEBHOOK_ALLOW_PRIVATE": "true"}).webhook_allow_private
    assert not Settings.from_env({"MARKET_WEBHOOK_ALLOW_PRIVATE": "0"}).webhook_allow_private


def test_an_unreadable_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="MARKET_WEBHOOK_ALLOW_PRIVATE"):
        Settings.from_env({"MARKET_WEBHOOK_ALLOW_PRIVATE": "perhaps"})
