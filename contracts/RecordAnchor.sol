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

    mapping(bytes32 root => Anchor) private _anchors;
    mapping(bytes32 leaf => bytes32) private _amendedBy;
    mapping(bytes32 leaf => bytes32) private _retractionReason;

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
        Anchor storage existing = _anchors[root];
        if (existing.anchorer != address(0)) {
            revert RecordAnchorRootAlreadyAnchored(root, existing.anchorer, existing.blockNumber);
        }
        _anchors[root] = Anchor({
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
        _requireUnchanged(originalLeaf);
        _requireUnchanged(amendedLeaf);
        _amendedBy[originalLeaf] = amendedLeaf;
        emit RecordAmended(originalLeaf, amendedLeaf, msg.sender);
    }

    /// @inheritdoc IRecordAnchor
    function retract(bytes32 root, bytes32 commitment, bytes32[] calldata proof, bytes32 reason)
        external
        onlyRole(ANCHORER_ROLE)
    {
        if (reason == bytes32(0)) revert RecordAnchorMissingReason();
        bytes32 leaf = _leaf(commitment);
        _requireOwnRecord(root, leaf, proof);
        bytes32 previous = _retractionReason[leaf];
        if (previous != bytes32(0)) revert RecordAnchorAlreadyRetracted(leaf, previous);
        _retractionReason[leaf] = reason;
        emit RecordRetracted(leaf, reason, msg.sender);
    }

    /// @inheritdoc IRecordAnchor
    function anchorOf(bytes32 root) external view returns (Anchor memory) {
        return _anchors[root];
    }

    /// @inheritdoc IRecordAnchor
    function verifyCommitment(bytes32 root, bytes32 commitment, bytes32[] calldata proof) public view returns (bool) {
        return _anchors[root].anchorer != address(0) && MerkleProof.verifyCalldata(proof, root, _leaf(commitment));
    }

    /// @inheritdoc IRecordAnchor
    function verifyRecord(bytes32 root, bytes32 salt, bytes32 digest, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        return verifyCommitment(root, keccak256(abi.encode(salt, digest)), proof);
    }

    /// @inheritdoc IRecordAnchor
    function recordStatus(bytes32 leaf) external view returns (bytes32 amendedBy, bytes32 retractionReason) {
        return (_amendedBy[leaf], _retractionReason[leaf]);
    }

    /// @dev StandardMerkleTree's leaf of a record: the hash of its commitment (a 32-byte preimage,
    /// where every internal node hashes 64 bytes).
    function _leaf(bytes32 commitment) private pure returns (bytes32) {
        return keccak256(bytes.concat(commitment));
    }

    /// @dev Reverts unless `leaf` is proven in `root` and `root` was anchored by the caller.
    function _requireOwnRecord(bytes32 root, bytes32 leaf, bytes32[] calldata proof) private view {
        address anchorer = _anchors[root].anchorer;
        if (anchorer == address(0)) revert RecordAnchorUnknownRoot(root);
        if (anchorer != msg.sender) revert RecordAnchorNotAnchorer(root, anchorer, msg.sender);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert RecordAnchorInvalidProof(root, leaf);
    }

    /// @dev Reverts if `leaf` was already amended or retracted.
    function _requireUnchanged(bytes32 leaf) private view {
        bytes32 amendedLeaf = _amendedBy[leaf];
        if (amendedLeaf != bytes32(0)) revert RecordAnchorAlreadyAmended(leaf, amendedLeaf);
        bytes32 reason = _retractionReason[leaf];
        if (reason != bytes32(0)) revert RecordAnchorAlreadyRetracted(leaf, reason);
    }
}
