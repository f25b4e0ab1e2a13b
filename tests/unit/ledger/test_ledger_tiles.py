"""C2SP tlog-tiles paths, layout and encodings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.hashing import NodeId, leaf_hash, node_hash, root_from_leaf_hashes
from ledger.tiles import (
    MAX_BUNDLE_ENTRY_BYTES,
    TILE_WIDTH,
    TileError,
    TileLevelLayout,
    TileRef,
    decode_entry_bundle,
    decode_hash_tile,
    encode_entry_bundle,
    encode_hash_tile,
    encode_tile_index,
    entries_path,
    parse_tile_path,
    tile_layout,
    tile_path,
    tiles_for_growth,
)


@pytest.mark.parametrize(
    ("index", "encoded"),
    [(0, "000"), (5, "005"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_index_encoding(index: int, encoded: str) -> None:
    assert encode_tile_index(index) == encoded


def test_paths_follow_the_spec() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(2, 5, 17) == "tile/2/005.p/17"
    assert entries_path(1000) == "tile/entries/x001/000"
    assert entries_path(3, 112) == "tile/entries/003.p/112"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("tile/0/x001/x234/067", TileRef(0, 1234067)),
        ("tile/63/000", TileRef(63, 0)),
        ("tile/1/000.p/1", TileRef(1, 0, 1)),
        ("tile/0/x123/456.p/255", TileRef(0, 123456, 255)),
        ("tile/entries/x001/000.p/5", TileRef(0, 1000, 5, is_entry_bundle=True)),
    ],
)
def test_valid_paths_parse(path: str, expected: TileRef) -> None:
    assert parse_tile_path(path) == expected
    assert expected.path == path


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in the level
        "tile/64/000",  # level above 63
        "tile/-1/000",
        "tile/0/5",  # index not zero-padded to three digits
        "tile/0/0005",
        "tile/0/x000/005",  # needless leading group
        "tile/0/001/234",  # missing x on a non-final group
        "tile/0/x001/x234",  # x on the final group
        "tile/0/000.p/0",  # empty tiles are never served
        "tile/0/000.p/256",  # a full tile carries no .p suffix
        "tile/0/000.p/010",  # leading zero in the width
        "tile/0/000.p/",
        "tile/entries/000.p/300",
        "tile/data/000",
        "/tile/0/000",
        "tile/0/000/",
        "tile/0/000\n",
        "tiles/0/000",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # index 2^64 is past uint64
    ],
)
def test_malformed_paths_are_rejected(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


@given(
    st.integers(min_value=0, max_value=63),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=1, max_value=TILE_WIDTH),
    st.booleans(),
)
def test_every_tile_path_parses_back(level: int, index: int, width: int, entries: bool) -> None:
    reference = TileRef(0 if entries else level, index, width, is_entry_bundle=entries)
    assert parse_tile_path(reference.path) == reference


def test_layout_matches_the_spec_examples() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
    # tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    # partial level 2 tile of width 1."
    assert tile_layout(70_000) == [
        TileLevelLayout(0, 273, 112),
        TileLevelLayout(1, 1, 17),
        TileLevelLayout(2, 0, 1),
    ]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile
    # of width 1."
    assert tile_layout(256) == [TileLevelLayout(0, 1, 0), TileLevelLayout(1, 0, 1)]
    assert tile_layout(0) == []


def test_all_tiles_of_a_tree_of_70000() -> None:
    hash_tiles = [tile for tile in tiles_for_growth(0, 70_000) if not tile.is_entry_bundle]
    bundles = [tile for tile in tiles_for_growth(0, 70_000) if tile.is_entry_bundle]
    assert len(hash_tiles) == 273 + 1 + 1 + 1 + 1
    assert [tile for tile in hash_tiles if tile.is_partial] == [
        TileRef(0, 273, 112),
        TileRef(1, 1, 17),
        TileRef(2, 0, 1),
    ]
    assert len(bundles) == 274
    assert bundles[-1] == TileRef(0, 273, 112, is_entry_bundle=True)


def test_growth_lists_only_new_or_changed_tiles() -> None:
    assert list(tiles_for_growth(300, 300)) == []
    # 300 → 520: level 0 goes from 1 full + 44 to 2 full + 8; level 1 from width 1 to width 2.
    assert list(tiles_for_growth(300, 520)) == [
        TileRef(0, 1),
        TileRef(0, 2, 8),
        TileRef(0, 1, is_entry_bundle=True),
        TileRef(0, 2, 8, is_entry_bundle=True),
        TileRef(1, 0, 2),
    ]
    # 10 → 12 changes only the partial level-0 tile and bundle.
    assert list(tiles_for_growth(10, 12)) == [
        TileRef(0, 0, 12),
        TileRef(0, 0, 12, is_entry_bundle=True),
    ]
    with pytest.raises(TileError, match="cannot shrink"):
        list(tiles_for_growth(5, 4))


def test_tile_contents_are_the_spec_merkle_tree_hashes() -> None:
    # Build a tree of 70,000 leaves bottom-up (only perfect subtrees) and check that a level-1
    # hash is MTH over its 256 leaves and that the partial level-2 tile spans 65,536 leaves.
    leaves = [leaf_hash(index.to_bytes(4, "big")) for index in range(70_000)]
    levels = [leaves]
    for _ in range(16):
        below = levels[-1]
        levels.append([node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)])

    level_one = TileRef(1, 1, 17)
    assert level_one.node_ids[0] == NodeId(8, 256)
    assert levels[8][256] == root_from_leaf_hashes(leaves[256 * 256 : 257 * 256])
    level_two = TileRef(2, 0, 1)
    assert level_two.node_ids == [NodeId(16, 0)]
    assert (level_two.start_index, level_two.end_index) == (0, 65_536)
    assert levels[16][0] == root_from_leaf_hashes(leaves[:65_536])
    assert (TileRef(0, 273, 112).start_index, TileRef(0, 273, 112).end_index) == (69_888, 70_000)
    assert TileRef(1, 2).start_index == 2 * 256**2


def test_hash_tiles_encode_and_decode() -> None:
    hashes = [leaf_hash(bytes([index])) for index in range(3)]
    body = encode_hash_tile(hashes)
    assert len(body) == 96
    assert decode_hash_tile(body, 3) == hashes
    assert len(encode_hash_tile([hashes[0]] * TILE_WIDTH)) == 8192
    with pytest.raises(TileError):
        decode_hash_tile(body[:-1], 3)
    with pytest.raises(TileError):
        decode_hash_tile(body, 4)
    with pytest.raises(TileError):
        encode_hash_tile([])
    with pytest.raises(TileError):
        encode_hash_tile([b"short"])


def test_entry_bundle_known_encoding() -> None:
    assert encode_entry_bundle([b"ab", b"", b"\x00" * 3]) == (
        b"\x00\x02ab" + b"\x00\x00" + b"\x00\x03\x00\x00\x00"
    )
    assert decode_entry_bundle(b"\x00\x02ab\x00\x00", width=2) == [b"ab", b""]


@given(st.lists(st.binary(max_size=600), min_size=1, max_size=TILE_WIDTH))
def test_entry_bundles_round_trip(entries: list[bytes]) -> None:
    assert decode_entry_bundle(encode_entry_bundle(entries), width=len(entries)) == entries


def test_malformed_entry_bundles_are_rejected() -> None:
    with pytest.raises(TileError, match="inside a length prefix"):
        decode_entry_bundle(b"\x00\x01a\x00")
    with pytest.raises(TileError, match="claims 5 bytes"):
        decode_entry_bundle(b"\x00\x05abc")
    with pytest.raises(TileError, match="at least one"):
        decode_entry_bundle(b"")
    with pytest.raises(TileError, match="expected 3"):
        decode_entry_bundle(b"\x00\x00\x00\x00", width=3)
    with pytest.raises(TileError, match="more than 256"):
        decode_entry_bundle(b"\x00\x00" * (TILE_WIDTH + 1))
    with pytest.raises(TileError, match="uint16"):
        encode_entry_bundle([b"x" * (MAX_BUNDLE_ENTRY_BYTES + 1)])
    with pytest.raises(TileError, match="1…256 entries"):
        encode_entry_bundle([b"x"] * (TILE_WIDTH + 1))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((64, 0), "level"),
        ((1, 0, 256, True), "entry bundles sit at level 0"),
        ((0, -1), "tile index"),
        ((0, 2**64), "tile index"),
        ((0, 0, 0), "width"),
        ((0, 0, 257), "width"),
    ],
)
def test_invalid_tile_refs_are_rejected(arguments: tuple[int, ...], message: str) -> None:
    with pytest.raises(TileError, match=message):
        TileRef(*arguments)  # type: ignore[arg-type]
