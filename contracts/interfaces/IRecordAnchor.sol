// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title IRecordAnchor
 * @notice Anchors Merkle roots of batches of salted record commitments. Only commitments ever
 * reach the chain: a leaf is OpenZeppelin StandardMerkleTree's leaf of `(bytes32 salt, bytes32 digest)`,
 * `keccak256(bytes.concat(keccak256(abi.encode(salt, digest))))`, where `digest` is the SHA-256 of
 * the record and `salt` a random per-record value that is never published.
 *
 * Functions that name a record on chain take its *commitment* `keccak256(abi.encode(salt, digest))`
 * and hash it into the leaf themselves, so that no internal node of a tree (a hash of 64 bytes) and
 * no root can ever be passed off as a record.
 *
 * A single record is a batch of one (its root is its leaf). The party that anchored a record can
 * later record that it was superseded by a corrected version (an amendment) or entered in error
 * (a retraction); both are permanent and visible to anyone.
 */
interface IRecordAnchor {
    /// @notice What the chain knows about an anchored root.
    struct Anchor {
        /// @dev Account that anchored the root (held `ANCHORER_ROLE` at that moment).
        address anchorer;
        /// @dev Number of the block that included the anchoring transaction.
        uint48 blockNumber;
        /// @dev Timestamp of that block.
        uint48 anchoredAt;
    }

    /// @notice The root is zero, which no Merkle tree produces.
    error RecordAnchorZeroRoot();

    /// @notice A batch must contain at least one leaf.
    error RecordAnchorEmptyBatch();

    /// @notice `root` was already anchored by `anchorer` in block `blockNumber`.
    error RecordAnchorRootAlreadyAnchored(bytes32 root, address anchorer, uint256 blockNumber);

    /// @notice `root` has never been anchored.
    error RecordAnchorUnknownRoot(bytes32 root);

    /// @notice `leaf` is not proven to belong to `root` by the given proof.
    error RecordAnchorInvalidProof(bytes32 root, bytes32 leaf);

    /// @notice Only the account that anchored `root` (`anchorer`) may amend or retract its records.
    error RecordAnchorNotAnchorer(bytes32 root, address anchorer, address caller);

    /// @notice `leaf` was already superseded by `amendedLeaf`.
    error RecordAnchorAlreadyAmended(bytes32 leaf, bytes32 amendedLeaf);

    /// @notice `leaf` was already retracted with `reason`.
    error RecordAnchorAlreadyRetracted(bytes32 leaf, bytes32 reason);

    /// @notice A record cannot amend itself.
    error RecordAnchorSelfAmendment(bytes32 leaf);

    /// @notice A retraction needs a non-zero reason code.
    error RecordAnchorMissingReason();

    /// @notice `root`, covering `leafCount` records, was anchored by `anchorer`.
    event RootAnchored(bytes32 indexed root, address indexed anchorer, uint256 leafCount);

    /// @notice The record `originalLeaf` was superseded by the corrected record `amendedLeaf`.
    event RecordAmended(
        bytes32 indexed originalLeaf, bytes32 indexed amendedLeaf, address indexed anchorer
    );

    /// @notice The record `leaf` was retracted as entered in error, for `reason` (a code, never free text).
    event RecordRetracted(bytes32 indexed leaf, bytes32 indexed reason, address indexed anchorer);

    /**
     * @notice Anchors the Merkle root of a batch of `leafCount` record commitments.
     * @param root Root of the batch's StandardMerkleTree.
     * @param leafCount Number of leaves (records) in the batch.
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE`;
     * - `root` is non-zero and has never been anchored;
     * - `leafCount` is at least 1.
     *
     * Emits a {RootAnchored} event.
     */
    function anchor(bytes32 root, uint256 leafCount) external;

    /**
     * @notice Records that a record was superseded by a corrected version.
     * @param originalRoot Anchored root containing the original record.
     * @param originalCommitment Commitment of the original record.
     * @param originalProof Proof of the original record's leaf in `originalRoot`.
     * @param amendedRoot Anchored root containing the corrected record.
     * @param amendedCommitment Commitment of the corrected record.
     * @param amendedProof Proof of the corrected record's leaf in `amendedRoot`.
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE` and anchored both roots;
     * - both proofs hold; the two records differ;
     * - neither record was amended or retracted before.
     *
     * Emits a {RecordAmended} event.
     */
    function amend(
        bytes32 originalRoot,
        bytes32 originalCommitment,
        bytes32[] calldata originalProof,
        bytes32 amendedRoot,
        bytes32 amendedCommitment,
        bytes32[] calldata amendedProof
    ) external;

    /**
     * @notice Records that a record was entered in error.
     * @param root Anchored root containing the record.
     * @param commitment Commitment of the record.
     * @param proof Proof of the record's leaf in `root`.
     * @param reason Non-zero reason code (for example `bytes32("ENTERED_IN_ERROR")`).
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE` and anchored `root`; the proof holds; the record was not retracted before.
     *
     * Emits a {RecordRetracted} event.
     */
    function retract(bytes32 root, bytes32 commitment, bytes32[] calldata proof, bytes32 reason) external;

    /**
     * @notice When and by whom `root` was anchored; all fields are zero if it never was.
     * @param root The root to look up.
     */
    function anchorOf(bytes32 root) external view returns (Anchor memory);

    /**
     * @notice Whether the record with `commitment` belongs to the anchored `root` by `proof`.
     * @dev False (not a revert) for a root that was never anchored. The leaf is computed here as
     * `keccak256(bytes.concat(commitment))`, so a root or internal node cannot pass as a record.
     * @param root An anchored root.
     * @param commitment The record's commitment, `keccak256(abi.encode(salt, digest))`.
     * @param proof Sibling hashes from the leaf up to the root.
     */
    function verifyCommitment(bytes32 root, bytes32 commitment, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /**
     * @notice Whether the record with `digest` and `salt` belongs to the anchored `root` by `proof`.
     * @dev Computes the commitment of `(salt, digest)` and calls {verifyCommitment}.
     * This is a view: call it, never send it, so that the salt stays off chain.
     * @param root An anchored root.
     * @param salt The record's salt.
     * @param digest The record's SHA-256 digest.
     * @param proof Sibling hashes from the leaf up to the root.
     */
    function verifyRecord(bytes32 root, bytes32 salt, bytes32 digest, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /**
     * @notice The later state of a record: the leaf that superseded it and the retraction reason
     * (zero when not amended / not retracted).
     * @param leaf The record's leaf.
     */
    function recordStatus(bytes32 leaf) external view returns (bytes32 amendedBy, bytes32 retractionReason);
}
