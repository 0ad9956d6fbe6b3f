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
 * Anchors belong to the account that made them: an anchor is keyed by `(anchorer, root)`, so
 * anchoring a root that another account anchored first is allowed and independent of it. Nobody
 * can occupy another organisation's root, or be credited with it.
 *
 * A record *as anchored* is `(anchorer, root, leaf)`: its leaf, proven in a root that account
 * anchored. A single record is a batch of one (its root is its leaf). Only that anchorer, while it
 * holds `ANCHORER_ROLE`, can later record that the record was superseded by a corrected record of
 * its own (an amendment) or entered in error (a retraction). Both are permanent and visible to
 * anyone, and follow one rule:
 *
 * **A record is changed at most once: amended or retracted, not both.** Whichever change comes
 * first is final; any later amendment or retraction of that record reverts with
 * {RecordAnchorAlreadyChanged}. A correction must itself be unchanged when it is named.
 */
interface IRecordAnchor {
    /// @notice What the chain knows about a root anchored by one account.
    struct Anchor {
        /// @dev Account that anchored the root (held `ANCHORER_ROLE` at that moment); zero if it never did.
        address anchorer;
        /// @dev Number of the block that included the anchoring transaction.
        uint48 blockNumber;
        /// @dev Timestamp of that block.
        uint48 anchoredAt;
    }

    /// @notice The later state of one anchored record `(anchorer, root, leaf)`; all zero while unchanged.
    struct RecordChange {
        /// @dev Root (anchored by the same account) holding the record that superseded it.
        bytes32 amendedRoot;
        /// @dev Leaf of the record that superseded it.
        bytes32 amendedLeaf;
        /// @dev Why it was retracted (a code, never free text).
        bytes32 retractionReason;
    }

    /// @notice The root is zero, which no Merkle tree produces.
    error RecordAnchorZeroRoot();

    /// @notice A batch must contain at least one leaf.
    error RecordAnchorEmptyBatch();

    /// @notice `anchorer` already anchored `root`, in block `blockNumber`.
    error RecordAnchorRootAlreadyAnchored(bytes32 root, address anchorer, uint256 blockNumber);

    /// @notice `anchorer` has never anchored `root` (another account may have: that anchor is not theirs).
    error RecordAnchorUnknownRoot(address anchorer, bytes32 root);

    /// @notice `leaf` is not proven to belong to `root` by the given proof.
    error RecordAnchorInvalidProof(bytes32 root, bytes32 leaf);

    /// @notice The record `(anchorer, root, leaf)` was already amended or retracted: a record is changed at most once.
    error RecordAnchorAlreadyChanged(address anchorer, bytes32 root, bytes32 leaf);

    /// @notice A record cannot amend itself.
    error RecordAnchorSelfAmendment(bytes32 leaf);

    /// @notice A retraction needs a non-zero reason code.
    error RecordAnchorMissingReason();

    /// @notice `root`, covering `leafCount` records, was anchored by `anchorer`.
    event RootAnchored(bytes32 indexed root, address indexed anchorer, uint256 leafCount);

    /// @notice `anchorer`'s record `originalLeaf` in `originalRoot` was superseded by its corrected
    /// record `amendedLeaf` in `amendedRoot`.
    event RecordAmended(
        bytes32 indexed originalLeaf,
        bytes32 indexed amendedLeaf,
        address indexed anchorer,
        bytes32 originalRoot,
        bytes32 amendedRoot
    );

    /// @notice `anchorer`'s record `leaf` in `root` was retracted as entered in error, for `reason`
    /// (a code, never free text).
    event RecordRetracted(bytes32 indexed leaf, bytes32 indexed reason, address indexed anchorer, bytes32 root);

    /**
     * @notice Anchors the Merkle root of a batch of `leafCount` record commitments, as the caller's.
     * @param root Root of the batch's StandardMerkleTree.
     * @param leafCount Number of leaves (records) in the batch.
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE`;
     * - `root` is non-zero and the caller has not anchored it before (other accounts' anchors of
     *   the same root do not count);
     * - `leafCount` is at least 1.
     *
     * Emits a {RootAnchored} event.
     */
    function anchor(bytes32 root, uint256 leafCount) external;

    /**
     * @notice Records that one of the caller's records was superseded by a corrected record of its own.
     * @param originalRoot Root, anchored by the caller, containing the original record.
     * @param originalCommitment Commitment of the original record.
     * @param originalProof Proof of the original record's leaf in `originalRoot`.
     * @param amendedRoot Root, anchored by the caller, containing the corrected record.
     * @param amendedCommitment Commitment of the corrected record.
     * @param amendedProof Proof of the corrected record's leaf in `amendedRoot`.
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE` and anchored both roots;
     * - both proofs hold; the two records differ;
     * - neither record was changed before (a record is changed at most once; a correction must be current).
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
     * @notice Records that one of the caller's records was entered in error.
     * @param root Root, anchored by the caller, containing the record.
     * @param commitment Commitment of the record.
     * @param proof Proof of the record's leaf in `root`.
     * @param reason Non-zero reason code (for example `bytes32("ENTERED_IN_ERROR")`).
     *
     * Requirements:
     * - the caller holds `ANCHORER_ROLE` and anchored `root`; the proof holds;
     * - the record was not changed before (a record is changed at most once).
     *
     * Emits a {RecordRetracted} event.
     */
    function retract(bytes32 root, bytes32 commitment, bytes32[] calldata proof, bytes32 reason) external;

    /**
     * @notice When `anchorer` anchored `root`; all fields are zero if it never did.
     * @param anchorer The account whose anchor is looked up.
     * @param root The root to look up.
     */
    function anchorOf(address anchorer, bytes32 root) external view returns (Anchor memory);

    /**
     * @notice Whether the record with `commitment` belongs by `proof` to `root` as anchored by `anchorer`.
     * @dev False (not a revert) for a root that account never anchored. The leaf is computed here as
     * `keccak256(bytes.concat(commitment))`, so a root or internal node cannot pass as a record.
     * @param anchorer The account that anchored `root`.
     * @param root A root anchored by `anchorer`.
     * @param commitment The record's commitment, `keccak256(abi.encode(salt, digest))`.
     * @param proof Sibling hashes from the leaf up to the root.
     */
    function verifyCommitment(address anchorer, bytes32 root, bytes32 commitment, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /**
     * @notice Whether the record with `digest` and `salt` belongs by `proof` to `root` as anchored by `anchorer`.
     * @dev Computes the commitment of `(salt, digest)` and calls {verifyCommitment}.
     * This is a view: call it, never send it, so that the salt stays off chain.
     * @param anchorer The account that anchored `root`.
     * @param root A root anchored by `anchorer`.
     * @param salt The record's salt.
     * @param digest The record's SHA-256 digest.
     * @param proof Sibling hashes from the leaf up to the root.
     */
    function verifyRecord(address anchorer, bytes32 root, bytes32 salt, bytes32 digest, bytes32[] calldata proof)
        external
        view
        returns (bool);

    /**
     * @notice The later state of the record `leaf` as anchored by `anchorer` in `root`: the record that
     * superseded it, or the retraction reason (all zero while unchanged, or for a record never anchored).
     * Changes recorded by any other account, against any other root, are not this record's.
     * @param anchorer The account that anchored the record.
     * @param root The root it was anchored in.
     * @param leaf The record's leaf.
     */
    function recordStatus(address anchorer, bytes32 root, bytes32 leaf) external view returns (RecordChange memory);
}
