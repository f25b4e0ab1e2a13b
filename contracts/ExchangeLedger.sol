// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title ExchangeLedger: the consortium ledger shared by the exchanges of the mutual-recognition
/// network (数据交易机构互认互通).
/// @notice Each member exchange keeps its own append-only log (RFC 6962 / RFC 9162 Merkle tree,
/// C2SP tlog-checkpoint). On this contract it anchors one (tree size, root) pair per checkpoint and
/// registers each unified registration code (登记赋码) once, so that a peer exchange can look a code
/// up here, fetch an inclusion proof for its leaf from the owning exchange, and check that proof
/// against a root the owner anchored: "register once, trusted nationwide".
/// @dev Reverts use custom errors only, so every failure is decodable from the ABI.
contract ExchangeLedger {
    enum MemberStatus {
        None,
        Active,
        // Exit mechanism (退出机制): a suspended member keeps its history readable but can no
        // longer anchor or register until the admin reinstates it.
        Suspended
    }

    struct Member {
        // status, latestTreeSize and admittedAtBlock share one storage slot, so an anchor reads
        // and rewrites a single member slot; this keeps `anchor` within its gas budget.
        MemberStatus status;
        uint64 latestTreeSize;
        uint64 admittedAtBlock;
        // The origin line of the member's checkpoints (C2SP tlog-checkpoint), which names its log.
        string origin;
    }

    struct CodeRecord {
        // exchange and leafIndex share one slot; a zero exchange means "not registered".
        address exchange;
        uint64 leafIndex;
        bytes32 leafHash;
    }

    uint256 public constant MAX_ORIGIN_LENGTH = 256;
    uint256 public constant MAX_CODE_LENGTH = 128;

    address public admin;
    address public pendingAdmin;
    mapping(address exchange => Member) public members;
    mapping(bytes32 originHash => address exchange) private exchangeByOriginHash;
    address[] private memberAddresses;
    mapping(address exchange => mapping(uint64 treeSize => bytes32 root)) private anchoredRoots;
    mapping(bytes32 codeHash => CodeRecord) private codeRecords;

    event AdminTransferStarted(address indexed currentAdmin, address indexed pendingAdmin);
    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);
    event MemberAdmitted(address indexed exchange, string origin);
    event MemberSuspended(address indexed exchange);
    event MemberReinstated(address indexed exchange);
    event Anchored(address indexed exchange, uint64 treeSize, bytes32 root);
    event CodeRegistered(
        bytes32 indexed codeHash, string code, address indexed exchange, uint64 leafIndex, bytes32 leafHash
    );

    error NotAdmin(address caller);
    error NotPendingAdmin(address caller);
    error ZeroAddress();
    error MemberAlreadyAdmitted(address exchange);
    error EmptyOrigin();
    error OriginTooLong(uint256 length, uint256 maxLength);
    error OriginAlreadyAdmitted(string origin, address exchange);
    error NotMember(address account);
    error MemberNotActive(address exchange);
    error MemberNotSuspended(address exchange);
    error TreeSizeNotGrowing(uint64 previous, uint64 proposed);
    // An RFC 6962 root or leaf hash is a SHA-256 output, never 32 zero bytes; zero is kept to
    // mean "nothing recorded" in the lookups below.
    error ZeroRoot();
    error ZeroLeafHash(string code);
    error EmptyCode();
    error CodeTooLong(uint256 length, uint256 maxLength);
    error CodeAlreadyRegistered(string code, address exchange);
    error EmptyBatch();
    error BatchLengthMismatch(uint256 codes, uint256 leafIndexes, uint256 leafHashes);

    modifier onlyAdmin() {
        if (msg.sender != admin) revert NotAdmin(msg.sender);
        _;
    }

    modifier onlyActiveMember() {
        _requireActiveMember(members[msg.sender].status, msg.sender);
        _;
    }

    constructor() {
        admin = msg.sender;
        emit AdminTransferred(address(0), msg.sender);
    }

    // ---------------------------------------------------------------- administration

    /// @notice First step of a two-step handover, so that a mistyped address cannot orphan the
    /// consortium: the new admin must call `acceptAdmin` from its own key.
    function transferAdmin(address newAdmin) external onlyAdmin {
        if (newAdmin == address(0)) revert ZeroAddress();
        pendingAdmin = newAdmin;
        emit AdminTransferStarted(msg.sender, newAdmin);
    }

    function acceptAdmin() external {
        if (msg.sender != pendingAdmin) revert NotPendingAdmin(msg.sender);
        emit AdminTransferred(admin, msg.sender);
        admin = msg.sender;
        pendingAdmin = address(0);
    }

    /// @notice Admits an exchange under the log origin its checkpoints carry. An origin belongs
    /// to one member only, otherwise a member could anchor roots in another exchange's name.
    function admitMember(address exchange, string calldata origin) external onlyAdmin {
        if (exchange == address(0)) revert ZeroAddress();
        if (members[exchange].status != MemberStatus.None) revert MemberAlreadyAdmitted(exchange);
        uint256 originLength = bytes(origin).length;
        if (originLength == 0) revert EmptyOrigin();
        if (originLength > MAX_ORIGIN_LENGTH) revert OriginTooLong(originLength, MAX_ORIGIN_LENGTH);
        bytes32 originHash = keccak256(bytes(origin));
        address originHolder = exchangeByOriginHash[originHash];
        if (originHolder != address(0)) revert OriginAlreadyAdmitted(origin, originHolder);

        members[exchange] = Member({
            status: MemberStatus.Active,
            latestTreeSize: 0,
            admittedAtBlock: uint64(block.number),
            origin: origin
        });
        exchangeByOriginHash[originHash] = exchange;
        memberAddresses.push(exchange);
        emit MemberAdmitted(exchange, origin);
    }

    function suspendMember(address exchange) external onlyAdmin {
        Member storage member = members[exchange];
        _requireActiveMember(member.status, exchange);
        member.status = MemberStatus.Suspended;
        emit MemberSuspended(exchange);
    }

    function reinstateMember(address exchange) external onlyAdmin {
        Member storage member = members[exchange];
        if (member.status == MemberStatus.None) revert NotMember(exchange);
        if (member.status != MemberStatus.Suspended) revert MemberNotSuspended(exchange);
        member.status = MemberStatus.Active;
        emit MemberReinstated(exchange);
    }

    // ---------------------------------------------------------------- anchoring

    /// @notice Anchors the root of the caller's log at `treeSize`. An append-only log only grows
    /// (RFC 9162 §2.1.4: a later checkpoint is consistent with every earlier one), so the tree size
    /// must exceed the caller's previous anchor; this also rejects replays of an old checkpoint.
    function anchor(uint64 treeSize, bytes32 root) external {
        Member storage member = members[msg.sender];
        _requireActiveMember(member.status, msg.sender);
        if (root == bytes32(0)) revert ZeroRoot();
        uint64 previousTreeSize = member.latestTreeSize;
        if (treeSize <= previousTreeSize) revert TreeSizeNotGrowing(previousTreeSize, treeSize);
        member.latestTreeSize = treeSize;
        anchoredRoots[msg.sender][treeSize] = root;
        emit Anchored(msg.sender, treeSize, root);
    }

    // ---------------------------------------------------------------- registration codes

    /// @notice Records that `code` is the registration code whose record is the leaf at
    /// `leafIndex` (with RFC 6962 leaf hash `leafHash`) of the caller's log. A code is unique
    /// across the whole consortium: one code, one owner, registered once.
    /// @dev The leaf need not be covered by an anchor yet: a peer checks it with an inclusion
    /// proof (RFC 9162 §2.1.3) against any root the owner anchors later at a larger tree size.
    function registerCode(string calldata code, uint64 leafIndex, bytes32 leafHash)
        external
        onlyActiveMember
    {
        _registerCode(code, leafIndex, leafHash);
    }

    function registerCodes(string[] calldata codes, uint64[] calldata leafIndexes, bytes32[] calldata leafHashes)
        external
        onlyActiveMember
    {
        uint256 count = codes.length;
        if (count == 0) revert EmptyBatch();
        if (leafIndexes.length != count || leafHashes.length != count) {
            revert BatchLengthMismatch(count, leafIndexes.length, leafHashes.length);
        }
        for (uint256 index = 0; index < count; ++index) {
            _registerCode(codes[index], leafIndexes[index], leafHashes[index]);
        }
    }

    // ---------------------------------------------------------------- lookups

    function lookupCode(string calldata code)
        external
        view
        returns (address exchange, uint64 leafIndex, bytes32 leafHash, bool registered)
    {
        CodeRecord storage record = codeRecords[keccak256(bytes(code))];
        return (record.exchange, record.leafIndex, record.leafHash, record.exchange != address(0));
    }

    /// @notice True for an admitted exchange, suspended or not: its anchors and codes stay valid.
    function isMember(address account) external view returns (bool) {
        return members[account].status != MemberStatus.None;
    }

    function isActiveMember(address account) external view returns (bool) {
        return members[account].status == MemberStatus.Active;
    }

    function memberCount() external view returns (uint256) {
        return memberAddresses.length;
    }

    /// @notice Members in order of admission. An index past the end reverts (Panic 0x32) rather
    /// than answering the zero address, which would hide the caller's bug.
    function memberAt(uint256 index) external view returns (address) {
        return memberAddresses[index];
    }

    /// @notice The member whose checkpoints carry `origin`, or the zero address.
    function memberByOrigin(string calldata origin) external view returns (address) {
        return exchangeByOriginHash[keccak256(bytes(origin))];
    }

    /// @notice The exchange's most recent anchor; (0, 0) when it has anchored nothing.
    function latestAnchor(address exchange) external view returns (uint64 treeSize, bytes32 root) {
        treeSize = members[exchange].latestTreeSize;
        root = anchoredRoots[exchange][treeSize];
    }

    /// @notice The root `exchange` anchored at exactly `treeSize`, or zero if it anchored none there.
    function anchoredRoot(address exchange, uint64 treeSize) external view returns (bytes32) {
        return anchoredRoots[exchange][treeSize];
    }

    // ---------------------------------------------------------------- internals

    function _requireActiveMember(MemberStatus status, address account) private pure {
        if (status == MemberStatus.None) revert NotMember(account);
        if (status != MemberStatus.Active) revert MemberNotActive(account);
    }

    function _registerCode(string calldata code, uint64 leafIndex, bytes32 leafHash) private {
        uint256 codeLength = bytes(code).length;
        if (codeLength == 0) revert EmptyCode();
        if (codeLength > MAX_CODE_LENGTH) revert CodeTooLong(codeLength, MAX_CODE_LENGTH);
        if (leafHash == bytes32(0)) revert ZeroLeafHash(code);
        bytes32 codeHash = keccak256(bytes(code));
        CodeRecord storage record = codeRecords[codeHash];
        if (record.exchange != address(0)) revert CodeAlreadyRegistered(code, record.exchange);
        record.exchange = msg.sender;
        record.leafIndex = leafIndex;
        record.leafHash = leafHash;
        emit CodeRegistered(codeHash, code, msg.sender, leafIndex, leafHash);
    }
}
