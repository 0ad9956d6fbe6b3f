// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IRecordAnchor} from "./interfaces/IRecordAnchor.sol";

/**
 * @title RecordAnchor
 * @notice See {IRecordAnchor}. An anchor costs one storage slot, so the gas per record falls
 * with the batch size: the batch's leaf count lives in the {RootAnchored} event only.
 */
contract RecordAnchor is IRecordAnchor, AccessControl {
    /// @notice Role of the accounts allowed to anchor roots (one per organisation).
    bytes32 public constant ANCHORER_ROLE = keccak256("ANCHORER_ROLE");

    mapping(address anchorer => mapping(bytes32 root => Anchor)) private _anchors;
    mapping(bytes32 recordKey => RecordChange) private _changes;

    /**
     * @param admin Account given `DEFAULT_ADMIN_ROLE`, which grants and revokes `ANCHORER_ROLE`.
     */
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc IRecordAnchor
    function anchor(bytes32 root, uint256 leafCount) external onlyRole(ANCHORER_ROLE) {
        if (root == bytes32(0)) revert RecordAnchorZeroRoot();
        if (leafCount == 0) revert RecordAnchorEmptyBatch();
        Anchor storage existing = _anchors[msg.sender][root];
        if (existing.anchorer != address(0)) {
            revert RecordAnchorRootAlreadyAnchored(root, msg.sender, existing.blockNumber);
        }
        _anchors[msg.sender][root] = Anchor({
            anchorer: msg.sender,
            blockNumber: uint48(block.number),
            anchoredAt: uint48(block.timestamp)
        });
        emit RootAnchored(root, msg.sender, leafCount);
    }

    /// @inheritdoc IRecordAnchor
    function amend(
        bytes32 originalRoot,
        bytes32 originalCommitment,
        bytes32[] calldata originalProof,
        bytes32 amendedRoot,
        bytes32 amendedCommitment,
        bytes32[] calldata amendedProof
    ) external onlyRole(ANCHORER_ROLE) {
        bytes32 originalLeaf = _leaf(originalCommitment);
        bytes32 amendedLeaf = _leaf(amendedCommitment);
        if (originalLeaf == amendedLeaf) revert RecordAnchorSelfAmendment(originalLeaf);
        _requireOwnRecord(originalRoot, originalLeaf, originalProof);
        _requireOwnRecord(amendedRoot, amendedLeaf, amendedProof);
        RecordChange storage change = _unchanged(originalRoot, originalLeaf);
        _unchanged(amendedRoot, amendedLeaf);
        change.amendedRoot = amendedRoot;
        change.amendedLeaf = amendedLeaf;
        emit RecordAmended(originalLeaf, amendedLeaf, msg.sender, originalRoot, amendedRoot);
    }

    /// @inheritdoc IRecordAnchor
    function retract(bytes32 root, bytes32 commitment, bytes32[] calldata proof, bytes32 reason)
        external
        onlyRole(ANCHORER_ROLE)
    {
        if (reason == bytes32(0)) revert RecordAnchorMissingReason();
        bytes32 leaf = _leaf(commitment);
        _requireOwnRecord(root, leaf, proof);
        _unchanged(root, leaf).retractionReason = reason;
        emit RecordRetracted(leaf, reason, msg.sender, root);
    }

    /// @inheritdoc IRecordAnchor
    function anchorOf(address anchorer, bytes32 root) external view returns (Anchor memory) {
        return _anchors[anchorer][root];
    }

    /// @inheritdoc IRecordAnchor
    function verifyCommitment(address anchorer, bytes32 root, bytes32 commitment, bytes32[] calldata proof)
        public
        view
        returns (bool)
    {
        return _anchors[anchorer][root].anchorer != address(0)
            && MerkleProof.verifyCalldata(proof, root, _leaf(commitment));
    }

    /// @inheritdoc IRecordAnchor
    function verifyRecord(address anchorer, bytes32 root, bytes32 salt, bytes32 digest, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return verifyCommitment(anchorer, root, keccak256(abi.encode(salt, digest)), proof);
    }

    /// @inheritdoc IRecordAnchor
    function recordStatus(address anchorer, bytes32 root, bytes32 leaf) external view returns (RecordChange memory) {
        return _changes[_recordKey(anchorer, root, leaf)];
    }

    /// @dev StandardMerkleTree's leaf of a record: the hash of its commitment (a 32-byte preimage,
    /// where every internal node hashes 64 bytes).
    function _leaf(bytes32 commitment) private pure returns (bytes32) {
        return keccak256(bytes.concat(commitment));
    }

    /// @dev The key of a record as anchored: who anchored it, in which root, and its leaf.
    function _recordKey(address anchorer, bytes32 root, bytes32 leaf) private pure returns (bytes32) {
        return keccak256(abi.encode(anchorer, root, leaf));
    }

    /// @dev Reverts unless the caller anchored `root` and `leaf` is proven in it.
    function _requireOwnRecord(bytes32 root, bytes32 leaf, bytes32[] calldata proof) private view {
        if (_anchors[msg.sender][root].anchorer == address(0)) revert RecordAnchorUnknownRoot(msg.sender, root);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert RecordAnchorInvalidProof(root, leaf);
    }

    /// @dev The change slot of the caller's record `(root, leaf)`; reverts if the record was already
    /// amended or retracted (the one rule: a record is changed at most once).
    function _unchanged(bytes32 root, bytes32 leaf) private view returns (RecordChange storage change) {
        change = _changes[_recordKey(msg.sender, root, leaf)];
        if (change.amendedLeaf != bytes32(0) || change.retractionReason != bytes32(0)) {
            revert RecordAnchorAlreadyChanged(msg.sender, root, leaf);
        }
    }
}
