"""Reconciliation: database records ↔ leaves ↔ stored tree ↔ signed checkpoints ↔ chain.

One streaming pass over the leaves (in index order, in chunks) recomputes every leaf hash, the
tiles and the root at every size some checkpoint or anchor claims, and compares each with what
is stored, signed or anchored. Each difference is reported with what it is and where it is.
Domain packages plug their own records in through `RecordSource`; the ledger does not know
them (ARCHITECTURE.md: ledger imports none of the domain packages).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from ledger.canonical import canonical_json
from ledger.chain import ChainGateway, ChainUnavailableError
from ledger.checkpoint import CheckpointError, open_checkpoint
from ledger.entries import JSONValue
from ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash
from ledger.note import NoteVerifier
from ledger.tables import LedgerLeaf
from ledger.tiles import TILE_WIDTH
from ledger.tree_store import load_tiles, perfect_root

logger = logging.getLogger("ledger.reconcile")

# Past this many findings of one kind the report summarises the rest: one missing leaf early
# in the log shifts every tile after it, and the first few findings already say where.
MAX_FINDINGS_PER_KIND = 50
DEFAULT_CHUNK_LEAVES = 20_000
MAX_ANCHORS_CHECKED_ON_CHAIN = 100


class DiscrepancyKind(StrEnum):
    MISSING_LEAF = "missing_leaf"
    EXTRA_LEAF = "extra_leaf"
    ENTRY_CHANGED = "entry_changed_after_logging"
    TILE_MISMATCH = "tree_node_mismatch"
    TILE_MISSING = "tree_tile_missing"
    CHECKPOINT_SIGNATURE = "checkpoint_signature_invalid"
    CHECKPOINT_ROOT_MISMATCH = "checkpoint_root_mismatch"
    CHECKPOINT_BEYOND_LOG = "checkpoint_beyond_log"
    CHECKPOINT_NOT_ANCHORED = "checkpoint_not_anchored"
    CHAIN_UNREACHABLE = "chain_unreachable"
    CHAIN_ROOT_MISMATCH = "chain_root_mismatch"
    ANCHOR_MISSING_ON_CHAIN = "anchor_missing_on_chain"
    CODE_REGISTERED_ELSEWHERE = "code_registered_elsewhere"
    CODE_MISSING_ON_CHAIN = "code_missing_on_chain"
    CODE_LEAF_MISMATCH = "code_leaf_mismatch"
    RECORD_CHANGED = "record_changed_after_logging"
    RECORD_NOT_LOGGED = "record_not_logged"
    RECORD_MISSING = "record_missing_from_database"
    TRUNCATED = "more_findings_not_listed"


@dataclass(frozen=True)
class Discrepancy:
    kind: DiscrepancyKind
    where: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "where": self.where, "detail": self.detail}


@dataclass(frozen=True)
class ReconcileReport:
    started_at: datetime
    finished_at: datetime
    tree_size: int
    leaves_checked: int
    discrepancies: list[Discrepancy]

    @property
    def clean(self) -> bool:
        return not self.discrepancies


@dataclass(frozen=True)
class ExpectedRecord:
    """What the database says a leaf of the log records: its subject, kind and payload.

    Which leaf: the one at `leaf_index` when the database stores it (e.g. an event row); else,
    with `match_field`, the newest leaf of the subject whose payload has the same value in that
    field (one subject, several versions); else the subject's newest leaf, whose earlier leaves
    are then its history. With `exact`, the payload must equal the leaf's; without, only the
    fields given are compared (the leaf may carry facts the database does not keep).
    """

    subject: str
    kind: str
    payload: Mapping[str, JSONValue]
    leaf_index: int | None = None
    match_field: str | None = None
    exact: bool = True
    actor: str | None = None


class RecordSource(Protocol):
    """A domain package's records, as the ledger should have logged them.

    `kinds` are the leaf kinds the source owns: a leaf of such a kind that no expected record
    claims is a record missing from the database.
    """

    name: str
    kinds: frozenset[str]

    def expected_records(self) -> AsyncIterator[ExpectedRecord]: ...


@dataclass(frozen=True)
class ReconcileOptions:
    verifier: NoteVerifier
    # Built per run (and closed by it when it has `close`), so a dead node costs one run only.
    gateway_factory: Callable[[], ChainGateway] | None = None
    unanchored_after: timedelta = timedelta(minutes=30)
    record_sources: Sequence[RecordSource] = ()
    chunk_leaves: int = DEFAULT_CHUNK_LEAVES


class _Findings:
    def __init__(self) -> None:
        self.items: list[Discrepancy] = []
        self._counts: Counter[DiscrepancyKind] = Counter()

    def add(self, kind: DiscrepancyKind, where: str, detail: str) -> None:
        self._counts[kind] += 1
        if self._counts[kind] <= MAX_FINDINGS_PER_KIND:
            self.items.append(Discrepancy(kind, where, detail))

    def finish(self) -> list[Discrepancy]:
        for kind, count in self._counts.items():
            if count > MAX_FINDINGS_PER_KIND:
                self.items.append(Discrepancy(
                    DiscrepancyKind.TRUNCATED, kind.value,
                    f"{count - MAX_FINDINGS_PER_KIND} more findings of this kind"))
        return self.items


class _CompactRange:
    """The right edge of the tree over the leaves pushed so far: the root of any prefix size
    is folded from it in O(log n) when that size is reached."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []

    def push(self, hashed: bytes) -> None:
        height, value = 0, hashed
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            value = node_hash(left, value)
            height += 1
        self._stack.append((height, value))

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


class _TileChecker:
    """Rebuilds the tiles from the sealed leaves pushed to it and compares them with storage."""

    def __init__(self, findings: _Findings) -> None:
        self._findings = findings
        self._levels: list[list[bytes]] = []
        self._next_index: list[int] = []
        self._expected: dict[tuple[int, int], bytes] = {}

    def push(self, level: int, hashed: bytes) -> None:
        while len(self._levels) <= level:
            self._levels.append([])
            self._next_index.append(0)
        buffer = self._levels[level]
        buffer.append(hashed)
        if len(buffer) == TILE_WIDTH:
            self._expected[(level, self._next_index[level])] = b"".join(buffer)
            self._next_index[level] += 1
            self._levels[level] = []
            self.push(level + 1, perfect_root(buffer))

    async def compare(self, connection: Any, *, final: bool) -> None:
        if final:
            for level, buffer in enumerate(self._levels):
                if buffer:
                    self._expected[(level, self._next_index[level])] = b"".join(buffer)
        if not self._expected:
            return
        stored = await load_tiles(connection, self._expected)
        for (level, index), expected in sorted(self._expected.items()):
            where = f"tile {level}/{index}"
            found = stored.get((level, index))
            if found is None:
                self._findings.add(DiscrepancyKind.TILE_MISSING, where,
                                   "the sealed tree needs this tile; it is not stored")
            elif found[:len(expected)] != expected:
                position = next(offset for offset in range(0, len(expected), 32)
                                if found[offset:offset + 32] != expected[offset:offset + 32])
                self._findings.add(
                    DiscrepancyKind.TILE_MISMATCH, where,
                    f"stored hash {position // 32} differs from the one the leaves produce")
        self._expected = {}


async def reconcile(options: ReconcileOptions, *,
                    progress: Callable[[int, int], None] | None = None,
                    now: datetime | None = None) -> ReconcileReport:
    started_at = datetime.now(UTC)
    findings = _Findings()
    engine = LedgerLeaf._meta.db
    async with engine.transaction() as transaction:
        connection = transaction.connection
        # One snapshot for the whole comparison: appends and seals that commit meanwhile are
        # neither half-seen nor reported as differences.
        await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = await connection.fetchval("SELECT next_index FROM ledger_head WHERE id = 1")
        head_size = int(head or 0)
        checkpoints = await connection.fetch(
            "SELECT tree_size, root_hash, note, signed_at FROM ledger_checkpoints "
            "ORDER BY tree_size")
        anchors = await connection.fetch(
            "SELECT a.tree_size, a.root_hash FROM ledger_anchors a "
            "JOIN ledger_chain_transactions t ON t.id = a.transaction_id "
            "WHERE t.status = 'confirmed' ORDER BY a.tree_size DESC LIMIT $1",
            MAX_ANCHORS_CHECKED_ON_CHAIN)
        sealed_size = int(checkpoints[-1]["tree_size"]) if checkpoints else 0

        chain_latest: tuple[int, bytes] | None = None
        gateway = options.gateway_factory() if options.gateway_factory else None
        try:
            if gateway is not None:
                try:
                    chain_latest = await gateway.latest_anchor()
                except ChainUnavailableError as error:
                    findings.add(DiscrepancyKind.CHAIN_UNREACHABLE, "chain", str(error))
                    gateway = None

            sizes_wanted = {int(row["tree_size"]) for row in checkpoints}
            sizes_wanted |= {int(row["tree_size"]) for row in anchors}
            if chain_latest is not None and chain_latest[0] > 0:
                sizes_wanted.add(chain_latest[0])
            scan = _LeafScan(head_size, sealed_size, sizes_wanted, findings)
            await _scan_leaves(connection, options.chunk_leaves, scan, progress)
            roots, leaves_checked = scan.roots, scan.checked

            _check_checkpoints(checkpoints, roots, options.verifier, findings)
            for row in anchors:
                size = int(row["tree_size"])
                if size in roots and roots[size] != bytes(row["root_hash"]):
                    findings.add(DiscrepancyKind.CHAIN_ROOT_MISMATCH, f"anchor at size {size}",
                                 "the locally recorded anchor root differs from the leaves' root")
            if gateway is not None and chain_latest is not None:
                await _check_chain(gateway, connection, chain_latest, anchors,
                                   checkpoints=checkpoints, roots=roots,
                                   unanchored_after=options.unanchored_after,
                                   now=now or started_at, findings=findings)
        finally:
            if gateway is not None and hasattr(gateway, "close"):
                await gateway.close()
        await _check_code_leaves(connection, findings)
        for source in options.record_sources:
            await _check_records(connection, source, findings)
    return ReconcileReport(started_at, datetime.now(UTC), sealed_size, leaves_checked,
                           findings.finish())


class _LeafScan:
    """One pass over the leaves: hashes, order, tree and the roots at the sizes wanted."""

    def __init__(self, head_size: int, sealed_size: int, sizes_wanted: set[int],
                 findings: _Findings) -> None:
        self.head_size = head_size
        self.sealed_size = sealed_size
        self.sizes_wanted = sizes_wanted
        self.findings = findings
        self.roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in sizes_wanted else {}
        self.compact = _CompactRange()
        self.tiles = _TileChecker(findings)
        self.expected_index = 0
        self.tree_leaves = 0  # leaves fed into the rebuilt tree, in order without a hole
        self.checked = 0

    def visit(self, index: int, entry: bytes, stored_hash: bytes) -> None:
        if index > self.expected_index:
            self.findings.add(DiscrepancyKind.MISSING_LEAF,
                              _leaf_range(self.expected_index, index),
                              "no leaf stored at these indexes")
        self.expected_index = index + 1
        self.checked += 1
        if leaf_hash(entry) != stored_hash:
            self.findings.add(DiscrepancyKind.ENTRY_CHANGED, f"leaf {index}",
                              "the entry no longer hashes to its recorded leaf hash")
        if index >= self.head_size:
            self.findings.add(DiscrepancyKind.EXTRA_LEAF, f"leaf {index}",
                              f"beyond the log head ({self.head_size} leaves appended)")
        if index != self.tree_leaves:
            return  # after a hole the rebuilt tree would only repeat the finding
        # The tree is rebuilt from the *stored* leaf hashes, so an entry edited without its hash
        # shows once (above), and an entry edited together with its hash shows in the tree.
        self.compact.push(stored_hash)
        self.tree_leaves += 1
        if self.tree_leaves <= self.sealed_size:
            self.tiles.push(0, stored_hash)
        if self.tree_leaves in self.sizes_wanted:
            self.roots[self.tree_leaves] = self.compact.root()


async def _scan_leaves(connection: Any, chunk_leaves: int, scan: _LeafScan,
                       progress: Callable[[int, int], None] | None) -> None:
    total = max(scan.head_size, scan.sealed_size)
    while True:
        rows = await connection.fetch(
            "SELECT leaf_index, entry, leaf_hash FROM ledger_leaves WHERE leaf_index >= $1 "
            "ORDER BY leaf_index LIMIT $2", scan.expected_index, chunk_leaves)
        if not rows:
            break
        for row in rows:
            scan.visit(int(row["leaf_index"]), bytes(row["entry"]), bytes(row["leaf_hash"]))
        await scan.tiles.compare(connection, final=False)
        if progress is not None:
            progress(scan.checked, total)
    if scan.expected_index < scan.head_size:
        scan.findings.add(DiscrepancyKind.MISSING_LEAF,
                          _leaf_range(scan.expected_index, scan.head_size),
                          "the log head counts these leaves; none is stored")
    if scan.tree_leaves >= scan.sealed_size:
        await scan.tiles.compare(connection, final=True)


def _leaf_range(first: int, end: int) -> str:
    return f"leaf {first}" if end - first == 1 else f"leaves {first}…{end - 1}"


def _check_checkpoints(checkpoints: Sequence[Any], roots: Mapping[int, bytes],
                       verifier: NoteVerifier, findings: _Findings) -> None:
    for row in checkpoints:
        size, root = int(row["tree_size"]), bytes(row["root_hash"])
        where = f"checkpoint at size {size}"
        try:
            opened = open_checkpoint(row["note"], verifier)
        except CheckpointError as error:
            findings.add(DiscrepancyKind.CHECKPOINT_SIGNATURE, where, str(error))
        else:
            if (opened.tree_size, opened.root_hash) != (size, root):
                findings.add(DiscrepancyKind.CHECKPOINT_ROOT_MISMATCH, where,
                             "the signed note and the stored size/root disagree")
        if size not in roots:
            findings.add(DiscrepancyKind.CHECKPOINT_BEYOND_LOG, where,
                         "signs more leaves than the log holds in order")
        elif roots[size] != root:
            findings.add(DiscrepancyKind.CHECKPOINT_ROOT_MISMATCH, where,
                         "the leaves hash to a different root than the checkpoint signs")


async def _check_chain(gateway: ChainGateway, connection: Any, chain_latest: tuple[int, bytes],
                       anchors: Sequence[Any], *, checkpoints: Sequence[Any],
                       roots: Mapping[int, bytes], unanchored_after: timedelta,
                       now: datetime, findings: _Findings) -> None:
    chain_size, chain_root = chain_latest
    if chain_size > 0:
        where = f"chain anchor at size {chain_size}"
        if chain_size not in roots:
            findings.add(DiscrepancyKind.CHAIN_ROOT_MISMATCH, where,
                         "the chain anchors a size the local log does not have")
        elif roots[chain_size] != chain_root:
            findings.add(DiscrepancyKind.CHAIN_ROOT_MISMATCH, where,
                         f"chain root {chain_root.hex()} ≠ local root "
                         f"{roots[chain_size].hex()}")
    for row in anchors:
        size, root = int(row["tree_size"]), bytes(row["root_hash"])
        on_chain = await gateway.anchored_root(size)
        if on_chain is None:
            findings.add(DiscrepancyKind.ANCHOR_MISSING_ON_CHAIN, f"anchor at size {size}",
                         "recorded as confirmed locally; the contract has no root there")
        elif on_chain != root and size != chain_size:
            findings.add(DiscrepancyKind.CHAIN_ROOT_MISMATCH, f"anchor at size {size}",
                         f"chain root {on_chain.hex()} ≠ local root {root.hex()}")
    for row in checkpoints:
        if int(row["tree_size"]) > chain_size:
            # The oldest checkpoint that no anchor covers; later ones are younger still.
            if row["signed_at"] < now - unanchored_after:
                findings.add(
                    DiscrepancyKind.CHECKPOINT_NOT_ANCHORED, f"checkpoint at size "
                    f"{row['tree_size']}", f"signed at {row['signed_at']:%Y-%m-%d %H:%M:%S}Z "
                    f"and not covered by an anchor after {unanchored_after}")
            break
    await _check_chain_codes(gateway, connection, findings)


async def _check_chain_codes(gateway: ChainGateway, connection: Any,
                             findings: _Findings) -> None:
    codes = await connection.fetch(
        "SELECT code, leaf_index, leaf_hash, status FROM ledger_code_registrations "
        "WHERE status IN ('registered', 'conflict') ORDER BY code")
    for row in codes:
        on_chain = await gateway.lookup_code(row["code"])
        where = f"code {row['code']}"
        if on_chain is None:
            if row["status"] == "registered":
                findings.add(DiscrepancyKind.CODE_MISSING_ON_CHAIN, where,
                             "recorded as registered; the contract does not know it")
        elif on_chain.exchange.lower() != gateway.sender.lower():
            findings.add(DiscrepancyKind.CODE_REGISTERED_ELSEWHERE, where,
                         f"registered on chain by {on_chain.exchange}")
        elif (on_chain.leaf_index, on_chain.leaf_hash) != (int(row["leaf_index"]),
                                                           bytes(row["leaf_hash"])):
            findings.add(DiscrepancyKind.CODE_LEAF_MISMATCH, where,
                         f"the chain names leaf {on_chain.leaf_index}, the exchange leaf "
                         f"{row['leaf_index']}")


async def _check_code_leaves(connection: Any, findings: _Findings) -> None:
    rows = await connection.fetch(
        "SELECT c.code, c.leaf_index FROM ledger_code_registrations c "
        "LEFT JOIN ledger_leaves l ON l.leaf_index = c.leaf_index "
        "WHERE l.leaf_hash IS DISTINCT FROM c.leaf_hash ORDER BY c.code")
    for row in rows:
        findings.add(DiscrepancyKind.CODE_LEAF_MISMATCH, f"code {row['code']}",
                     f"leaf {row['leaf_index']} is missing or has another hash")


def _canonical(payload: Any) -> bytes:
    return bytes(canonical_json(payload))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# Expected records are compared in batches: one query fetches the leaves a batch names, so
# neither the whole log nor one query per record is needed.
RECORD_BATCH = 2_000


@dataclass
class _LoggedLeaf:
    index: int
    subject: str
    kind: str
    entry: bytes
    _document: dict[str, Any] | None = None

    @property
    def document(self) -> dict[str, Any]:
        if self._document is None:
            parsed = json.loads(self.entry)
            self._document = parsed if isinstance(parsed, dict) else {}
        return self._document


class _RecordCheck:
    def __init__(self, connection: Any, source: RecordSource, findings: _Findings) -> None:
        self.connection = connection
        self.source = source
        self.findings = findings
        self.kinds = sorted(source.kinds)
        self.claimed: set[int] = set()

    async def run(self) -> None:
        batch: list[ExpectedRecord] = []
        async for expected in self.source.expected_records():
            batch.append(expected)
            if len(batch) >= RECORD_BATCH:
                await self._compare_batch(batch)
                batch = []
        if batch:
            await self._compare_batch(batch)
        await self._report_unclaimed()

    async def _compare_batch(self, batch: Sequence[ExpectedRecord]) -> None:
        indexes = sorted({item.leaf_index for item in batch if item.leaf_index is not None})
        subjects = sorted({item.subject for item in batch if item.leaf_index is None})
        # A source may check leaves it does not own (e.g. a registry checks its registrations'
        # leaves): it looks among the kinds it expects, but claims only the kinds it owns.
        lookup_kinds = self.source.kinds | {item.kind for item in batch}
        # A leaf the database names by index is fetched whatever its kind, so a leaf whose kind
        # was rewritten shows as changed rather than as missing.
        rows = await self.connection.fetch(
            "SELECT leaf_index, subject, kind, entry FROM ledger_leaves "
            "WHERE leaf_index = ANY($1::bigint[]) "
            "OR (kind = ANY($2::varchar[]) AND subject = ANY($3::varchar[])) ORDER BY leaf_index",
            indexes, sorted(lookup_kinds), subjects)
        by_index: dict[int, _LoggedLeaf] = {}
        by_subject: dict[str, list[_LoggedLeaf]] = {}
        for row in rows:
            leaf = _LoggedLeaf(int(row["leaf_index"]), row["subject"], row["kind"],
                               bytes(row["entry"]))
            by_index[leaf.index] = leaf
            if leaf.kind in lookup_kinds:
                by_subject.setdefault(leaf.subject, []).append(leaf)
        for expected in batch:
            self._compare_one(expected, by_index, by_subject.get(expected.subject, []))

    def _compare_one(self, expected: ExpectedRecord, by_index: Mapping[int, _LoggedLeaf],
                     of_subject: Sequence[_LoggedLeaf]) -> None:
        where = f"{self.source.name} {expected.subject}"
        if expected.leaf_index is not None:
            leaf = by_index.get(expected.leaf_index)
            if leaf is None:
                self.findings.add(DiscrepancyKind.RECORD_NOT_LOGGED, where,
                                  f"the database names leaf {expected.leaf_index}; "
                                  "the log has no such leaf")
                return
            self._claim(leaf)
            if leaf.subject != expected.subject:
                self.findings.add(DiscrepancyKind.RECORD_CHANGED, where,
                                  f"the database names leaf {leaf.index}, which records "
                                  f"{leaf.subject}")
                return
        elif expected.match_field is not None:
            wanted = _canonical(_plain(expected.payload.get(expected.match_field)))
            matching = [leaf for leaf in of_subject
                        if expected.match_field in _payload_of(leaf) and
                        _canonical(_payload_of(leaf)[expected.match_field]) == wanted]
            if not matching:
                self.findings.add(DiscrepancyKind.RECORD_NOT_LOGGED, where,
                                  f"no leaf records {expected.match_field} "
                                  f"{expected.payload.get(expected.match_field)}")
                return
            leaf = matching[-1]
            self._claim(leaf)
        else:
            if not of_subject:
                self.findings.add(DiscrepancyKind.RECORD_NOT_LOGGED, where, "no leaf records it")
                return
            leaf = of_subject[-1]
            for item in of_subject:
                self._claim(item)
        differing = _differences(expected, leaf)
        if differing:
            self.findings.add(DiscrepancyKind.RECORD_CHANGED, where,
                              f"the database record differs from leaf {leaf.index} "
                              f"in {', '.join(differing)}")

    def _claim(self, leaf: _LoggedLeaf) -> None:
        if leaf.kind in self.source.kinds:
            self.claimed.add(leaf.index)

    async def _report_unclaimed(self) -> None:
        if not self.kinds:
            return
        unclaimed: dict[str, list[int]] = {}
        after = -1
        while True:
            rows = await self.connection.fetch(
                "SELECT leaf_index, subject FROM ledger_leaves WHERE kind = ANY($1::varchar[]) "
                "AND leaf_index > $2 ORDER BY leaf_index LIMIT $3", self.kinds, after,
                DEFAULT_CHUNK_LEAVES)
            if not rows:
                break
            for row in rows:
                index = int(row["leaf_index"])
                if index not in self.claimed:
                    unclaimed.setdefault(row["subject"], []).append(index)
            after = int(rows[-1]["leaf_index"])
        for subject, indexes in unclaimed.items():
            shown = ", ".join(str(index) for index in indexes[:5])
            more = f" and {len(indexes) - 5} more" if len(indexes) > 5 else ""
            self.findings.add(DiscrepancyKind.RECORD_MISSING, f"{self.source.name} {subject}",
                              f"leaf {shown}{more} records it; the database has no such record")


def _payload_of(leaf: _LoggedLeaf) -> Mapping[str, Any]:
    payload = leaf.document.get("payload")
    return payload if isinstance(payload, Mapping) else {}


def _differences(expected: ExpectedRecord, leaf: _LoggedLeaf) -> list[str]:
    """The names of what differs (never the values: they may be personal data)."""
    document = leaf.document
    differing: list[str] = []
    if document.get("kind") != expected.kind:
        differing.append("kind")
    if expected.actor is not None and document.get("actor") != expected.actor:
        differing.append("actor")
    logged = _payload_of(leaf)
    wanted = _plain(expected.payload)
    names = sorted(set(wanted) | set(logged)) if expected.exact else sorted(wanted)
    differing.extend(
        f"payload.{name}" for name in names
        if name not in logged or name not in wanted
        or _canonical(logged[name]) != _canonical(wanted[name]))
    return differing


async def _check_records(connection: Any, source: RecordSource, findings: _Findings) -> None:
    await _RecordCheck(connection, source, findings).run()


# ---------------------------------------------------------------------- stored results


@dataclass(frozen=True)
class StoredReconciliation:
    id: int
    trigger: str
    report: ReconcileReport


@dataclass(frozen=True)
class StoredAlert:
    id: int
    raised_at: datetime
    reconciliation_id: int
    summary: str


async def reconcile_and_record(options: ReconcileOptions, *, trigger: str,
                               progress: Callable[[int, int], None] | None = None,
                               ) -> StoredReconciliation:
    """Reconcile, store the result, and raise an alert (stored and logged) on any finding."""
    report = await reconcile(options, progress=progress)
    engine = LedgerLeaf._meta.db
    async with engine.transaction() as transaction:
        connection = transaction.connection
        reconciliation_id = int(await connection.fetchval(
            "INSERT INTO ledger_reconciliations (started_at, finished_at, trigger, tree_size, "
            "leaves_checked, discrepancy_count, discrepancies) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
            report.started_at, report.finished_at, trigger, report.tree_size,
            report.leaves_checked, len(report.discrepancies),
            json.dumps([item.to_json() for item in report.discrepancies], ensure_ascii=False)))
        if report.discrepancies:
            kinds = Counter(item.kind.value for item in report.discrepancies)
            summary = (f"ledger reconciliation {reconciliation_id} found "
                       f"{len(report.discrepancies)} differences: "
                       + ", ".join(f"{kind} ×{count}" for kind, count in sorted(kinds.items())))
            await connection.execute(
                "INSERT INTO ledger_alerts (reconciliation_id, summary) VALUES ($1, $2)",
                reconciliation_id, summary)
            logger.error(summary)
    return StoredReconciliation(reconciliation_id, trigger, report)


def _stored(row: Any) -> StoredReconciliation:
    items = json.loads(row["discrepancies"]) if isinstance(row["discrepancies"], str) \
        else row["discrepancies"]
    report = ReconcileReport(
        row["started_at"], row["finished_at"], int(row["tree_size"]), int(row["leaves_checked"]),
        [Discrepancy(DiscrepancyKind(item["kind"]), item["where"], item["detail"])
         for item in items])
    return StoredReconciliation(int(row["id"]), row["trigger"], report)


_SELECT_RUNS = ("SELECT id, trigger, started_at, finished_at, tree_size, leaves_checked, "
                "discrepancies FROM ledger_reconciliations ")


async def recent_reconciliations(limit: int) -> list[StoredReconciliation]:
    rows = await LedgerLeaf.raw(_SELECT_RUNS + "ORDER BY id DESC LIMIT {}", limit).run()
    return [_stored(row) for row in rows]


async def find_reconciliation(reconciliation_id: int) -> StoredReconciliation | None:
    rows = await LedgerLeaf.raw(_SELECT_RUNS + "WHERE id = {}", reconciliation_id).run()
    return _stored(rows[0]) if rows else None


async def recent_alerts(limit: int) -> list[StoredAlert]:
    rows = await LedgerLeaf.raw(
        "SELECT id, raised_at, reconciliation_id, summary FROM ledger_alerts "
        "ORDER BY id DESC LIMIT {}", limit).run()
    return [StoredAlert(int(row["id"]), row["raised_at"], int(row["reconciliation_id"]),
                        row["summary"]) for row in rows]

