"""C2SP tiled transparency log layout (c2sp.org/tlog-tiles).

A tile at level L holds up to 256 consecutive Merkle tree hashes at tree height 8·L: the n-th
tile's i-th hash is MTH(D[(n·256 + i)·256^L : (n·256 + i + 1)·256^L]), i.e. the perfect subtree
`NodeId(8·L, n·256 + i)`. Entry bundles hold the entries behind the level-0 tiles.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ledger.hashing import HASH_SIZE_BYTES, NodeId

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
TileKey = tuple[int, int]  # (level, tile index) of a hash tile
MAX_TILE_LEVEL = 63
# Entry bundles prefix each entry with a big-endian uint16 length ("Log entries").
MAX_BUNDLE_ENTRY_BYTES = 0xFFFF
# Tile indexes are uint64 in tlog implementations (e.g. golang.org/x/mod/sumdb/tlog).
MAX_TILE_INDEX = 2**64 - 1

_DECIMAL = r"(?:0|[1-9][0-9]*)"
_INDEX = r"(?:x[0-9]{3}/)*[0-9]{3}"
_TILE_PATH_PATTERN = re.compile(
    rf"tile/(?:(?P<level>{_DECIMAL})|(?P<entries>entries))/(?P<index>{_INDEX})(?:\.p/(?P<width>{_DECIMAL}))?"
)


class TileError(ValueError):
    """A tile path, tile or entry bundle is malformed."""


def encode_tile_index(index: int) -> str:
    """`<N>` of a tile path: zero-padded 3-digit groups, all but the last prefixed with `x`
    (1234067 → `x001/x234/067`), so that a file system can hold the tiles without a directory
    and a file ever sharing a name."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_TILE_INDEX:
        raise TileError(f"tile index must be an integer in 0…2^64−1, got {index!r}")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


@dataclass(frozen=True)
class TileRef:
    """One tile (`is_entry_bundle` false) or entry bundle (true, always level 0) of a tiled log."""

    level: int
    index: int
    width: int = TILE_WIDTH
    is_entry_bundle: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or not isinstance(self.level, int):
            raise TileError("tile level must be an integer")
        if not 0 <= self.level <= MAX_TILE_LEVEL:
            raise TileError(f"tile level must be 0…{MAX_TILE_LEVEL}, got {self.level}")
        if self.is_entry_bundle and self.level != 0:
            raise TileError("entry bundles sit at level 0")
        encode_tile_index(self.index)
        if isinstance(self.width, bool) or not isinstance(self.width, int):
            raise TileError("tile width must be an integer")
        if not 1 <= self.width <= TILE_WIDTH:
            # "Empty tiles MUST NOT be served"; a full tile is exactly 256 hashes wide.
            raise TileError(f"tile width must be 1…{TILE_WIDTH}, got {self.width}")

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    @property
    def path(self) -> str:
        """The path under the log's prefix, e.g. `tile/1/x001/234` or `tile/entries/000.p/5`."""
        level_part = "entries" if self.is_entry_bundle else str(self.level)
        partial_part = f".p/{self.width}" if self.is_partial else ""
        return f"tile/{level_part}/{encode_tile_index(self.index)}{partial_part}"

    @property
    def node_ids(self) -> list[NodeId]:
        """The perfect subtrees whose hashes the tile holds, in order (for an entry bundle: the
        leaves whose entries it holds)."""
        first = self.index * TILE_WIDTH
        height = TILE_HEIGHT * self.level
        return [NodeId(height, position) for position in range(first, first + self.width)]

    @property
    def start_index(self) -> int:
        """The first leaf under the tile (tlog-tiles "start index")."""
        return self.index << (TILE_HEIGHT * (self.level + 1))

    @property
    def end_index(self) -> int:
        """One past the last leaf under the tile's hashes (the spec's "end index" when full)."""
        return self.start_index + (self.width << (TILE_HEIGHT * self.level))


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """`tile/<L>/<N>[.p/<W>]`."""
    return TileRef(level, index, width).path


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """`tile/entries/<N>[.p/<W>]`."""
    return TileRef(0, index, width, is_entry_bundle=True).path


def parse_tile_path(path: str) -> TileRef:
    """Parse a tile or entry bundle path (relative to the log prefix), accepting only the one
    canonical spelling: no leading zeroes in L or W, no needless leading `x000/` group, W 1…255."""
    match = _TILE_PATH_PATTERN.fullmatch(path) if isinstance(path, str) else None
    if match is None:
        raise TileError(
            f"{path!r} is not a tile path tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]"
        )
    width_text = match["width"]
    if width_text is not None and not 1 <= int(width_text) < TILE_WIDTH:
        raise TileError(f"partial tile width must be 1…{TILE_WIDTH - 1}, got {width_text}")
    reference = TileRef(
        level=0 if match["entries"] else int(match["level"]),
        index=int(match["index"].replace("x", "").replace("/", "")),
        width=TILE_WIDTH if width_text is None else int(width_text),
        is_entry_bundle=match["entries"] is not None,
    )
    if reference.path != path:
        raise TileError(f"{path!r} is not the canonical spelling {reference.path!r}")
    return reference


@dataclass(frozen=True)
class TileLevelLayout:
    """How a tree of some size fills one tile level: `full_tiles` full tiles, then one partial
    tile of `partial_width` hashes when that is not zero."""

    level: int
    full_tiles: int
    partial_width: int


def tile_layout(tree_size: int) -> list[TileLevelLayout]:
    """Per level, the full and partial tiles a tree of `tree_size` has (tlog-tiles "Partial
    Tiles": level l has floor(s / 256^l) hashes)."""
    if isinstance(tree_size, bool) or not isinstance(tree_size, int) or tree_size < 0:
        raise TileError(f"tree size must be a non-negative integer, got {tree_size!r}")
    layout = []
    level = 0
    while hashes_at_level := tree_size >> (TILE_HEIGHT * level):
        layout.append(
            TileLevelLayout(level, hashes_at_level // TILE_WIDTH, hashes_at_level % TILE_WIDTH)
        )
        level += 1
    return layout


def tiles_for_growth(old_size: int, new_size: int) -> Iterator[TileRef]:
    """The tiles and entry bundles that exist at `new_size` but not at `old_size`: what a log
    publishes after growing. `tiles_for_growth(0, size)` lists every tile of a tree."""
    if old_size > new_size:
        raise TileError(f"a log cannot shrink from {old_size} to {new_size}")
    old_hash_counts = {layout.level: layout for layout in tile_layout(old_size)}
    for layout in tile_layout(new_size):
        old = old_hash_counts.get(layout.level, TileLevelLayout(layout.level, 0, 0))
        if (old.full_tiles, old.partial_width) == (layout.full_tiles, layout.partial_width):
            continue
        indexes = range(old.full_tiles, layout.full_tiles)
        kinds = (False, True) if layout.level == 0 else (False,)
        for is_entry_bundle in kinds:
            for index in indexes:
                yield TileRef(layout.level, index, TILE_WIDTH, is_entry_bundle)
            if layout.partial_width:
                yield TileRef(
                    layout.level, layout.full_tiles, layout.partial_width, is_entry_bundle
                )


def encode_hash_tile(hashes: Sequence[bytes]) -> bytes:
    """A tile's body: its hashes concatenated (a full tile is 8,192 bytes)."""
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise TileError(f"a tile holds 1…{TILE_WIDTH} hashes, got {len(hashes)}")
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE_BYTES:
            raise TileError(f"hash {position} is {len(value)} bytes, not {HASH_SIZE_BYTES}")
    return b"".join(hashes)


def decode_hash_tile(data: bytes, width: int) -> list[bytes]:
    """Split a tile body of `width` hashes, rejecting any other length."""
    if not 1 <= width <= TILE_WIDTH or len(data) != width * HASH_SIZE_BYTES:
        raise TileError(
            f"a tile of width {width} must be {width * HASH_SIZE_BYTES} bytes, got {len(data)}"
        )
    return [
        data[offset : offset + HASH_SIZE_BYTES] for offset in range(0, len(data), HASH_SIZE_BYTES)
    ]


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """Each entry prefixed by its length as a big-endian uint16."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise TileError(f"an entry bundle holds 1…{TILE_WIDTH} entries, got {len(entries)}")
    parts = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_BUNDLE_ENTRY_BYTES:
            raise TileError(
                f"entry {position} is {len(entry)} bytes, above the uint16 length limit"
            )
        parts.append(len(entry).to_bytes(2, "big") + entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle; with `width`, also require exactly that many."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise TileError(f"entry bundle ends inside a length prefix at byte {offset}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if len(data) - offset < length:
            raise TileError(
                f"entry {len(entries)} claims {length} bytes, only {len(data) - offset} remain"
            )
        entries.append(data[offset : offset + length])
        offset += length
        if len(entries) > TILE_WIDTH:
            raise TileError(f"entry bundle holds more than {TILE_WIDTH} entries")
    if not entries:
        raise TileError("an entry bundle holds at least one entry")
    if width is not None and len(entries) != width:
        raise TileError(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries
