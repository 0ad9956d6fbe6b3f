// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IConsentRegistry} from "./interfaces/IConsentRegistry.sol";

/**
 * @title ConsentRegistry
 * @notice See {IConsentRegistry}. Signed requests follow ERC20Permit: deadline first, then the
 * struct hash with the patient's nonce consumed, then the signature checked against the named
 * signer (`SignatureChecker`: ECDSA with low-s only, or ERC-1271).
 */
contract ConsentRegistry is IConsentRegistry, AccessControl, EIP712, Nonces {
    /// @notice Role of the accounts allowed to record break-glass access.
    bytes32 public constant EMERGENCY_ROLE = keccak256("EMERGENCY_ROLE");

    /// @notice Scope code meaning "all of the patient's data".
    bytes32 public constant ALL_DATA = "*";

    /// @dev EIP-712 type hash of a signed grant.
    bytes32 private constant _GRANT_TYPEHASH = keccak256(
        "ConsentGrant(address patient,address grantee,bytes32 scope,bytes32 purpose,uint64 validFrom,"
        "uint64 validUntil,address signer,uint256 nonce,uint256 deadline)"
    );

    /// @dev EIP-712 type hash of a signed revocation.
    bytes32 private constant _REVOCATION_TYPEHASH = keccak256(
        "ConsentRevocation(address patient,address grantee,bytes32 scope,bytes32 purpose,address signer,"
        "uint256 nonce,uint256 deadline)"
    );

    /// @dev EIP-712 type hash of a signed consent document (every key of scopes x purposes).
    bytes32 private constant _GRANT_SET_TYPEHASH = keccak256(
        "ConsentGrantSet(address patient,address grantee,bytes32[] scopes,bytes32[] purposes,uint64 validFrom,"
        "uint64 validUntil,bytes32 terms,address signer,uint256 nonce,uint256 deadline)"
    );

    /// @dev EIP-712 type hash of a signed withdrawal of a consent document.
    bytes32 private constant _REVOCATION_SET_TYPEHASH = keccak256(
        "ConsentRevocationSet(address patient,address grantee,bytes32[] scopes,bytes32[] purposes,bytes32 terms,"
        "address signer,uint256 nonce,uint256 deadline)"
    );

    /// @dev EIP-712 type hash of a signed guardian appointment (validUntil zero removes).
    bytes32 private constant _GUARDIAN_TYPEHASH = keccak256(
        "GuardianAppointment(address patient,address guardian,uint64 validUntil,uint256 nonce,uint256 deadline)"
    );

    mapping(bytes32 key => Consent) private _consents;
    mapping(address patient => mapping(address guardian => uint64 validUntil)) private _guardians;
    mapping(bytes32 purpose => bool) private _isEmergencyPurpose;
    bytes32[] private _emergencyPurposes;

    /**
     * @param admin Account given `DEFAULT_ADMIN_ROLE`, which grants and revokes `EMERGENCY_ROLE`.
     * @param emergencyPurposes_ The purposes of use break-glass access may be recorded for (fixed
     * for the registry's lifetime), for example `["ETREAT", "BTG"]`.
     *
     * Requirements: every purpose is non-zero.
     */
    constructor(address admin, bytes32[] memory emergencyPurposes_) EIP712("CareLedger ConsentRegistry", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        for (uint256 i = 0; i < emergencyPurposes_.length; ++i) {
            bytes32 purpose = emergencyPurposes_[i];
            if (purpose == bytes32(0)) revert ConsentRegistryZeroCode();
            if (!_isEmergencyPurpose[purpose]) {
                _isEmergencyPurpose[purpose] = true;
                _emergencyPurposes.push(purpose);
            }
        }
    }

    // --- consent -------------------------------------------------------------------------

    /// @inheritdoc IConsentRegistry
    function grant(GrantRequest calldata request) external {
        _requireActor(request.patient, msg.sender);
        _grantRequest(request, msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function revoke(RevokeRequest calldata request) external {
        _requireActor(request.patient, msg.sender);
        _revokeRequest(request, msg.sender);
    }

    /// @inheritdoc IConsentRegistry
    function grantBySig(GrantRequest calldata request, address signer, uint256 deadline, bytes calldata signature)
        external
    {
        _requireLive(deadline);
        _requireActor(request.patient, signer);
        bytes32 digest = _grantDigest(request, signer, _useNonce(request.patient), deadline);
        _requireSignature(signer, digest, signature);
        _grantRequest(request, signer);
    }

    /// @inheritdoc IConsentRegistry
    function revokeBySig(RevokeRequest calldata request, address signer, uint256 deadline, bytes calldata signature)
        external
    {
        _requireLive(deadline);
        _requireActor(request.patient, signer);
        bytes32 digest = _revocationDigest(request, signer, _useNonce(request.patient), deadline);
        _requireSignature(signer, digest, signature);
        _revokeRequest(request, signer);
    }

    /// @inheritdoc IConsentRegistry
    function grantSetBySig(GrantSetRequest calldata request, address signer, uint256 deadline, bytes calldata signature)
        external
    {
        _requireLive(deadline);
        _requireActor(request.patient, signer);
        _requireSet(request.scopes, request.purposes, request.terms);
        bytes32 digest = _grantSetDigest(request, signer, _useNonce(request.patient), deadline);
        _requireSignature(signer, digest, signature);
        for (uint256 i = 0; i < request.scopes.length; ++i) {
            for (uint256 j = 0; j < request.purposes.length; ++j) {
                _grant(
                    request.patient,
                    request.grantee,
                    request.scopes[i],
                    request.purposes[j],
                    request.validFrom,
                    request.validUntil,
                    signer
                );
            }
        }
        emit ConsentSetGranted(request.patient, request.grantee, request.terms, signer);
    }

    /// @inheritdoc IConsentRegistry
    function revokeSetBySig(
        RevokeSetRequest calldata request,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _requireLive(deadline);
        _requireActor(request.patient, signer);
        _requireSet(request.scopes, request.purposes, request.terms);
        bytes32 digest = _revocationSetDigest(request, signer, _useNonce(request.patient), deadline);
        _requireSignature(signer, digest, signature);
        bool revoked = false;
        for (uint256 i = 0; i < request.scopes.length; ++i) {
            for (uint256 j = 0; j < request.purposes.length; ++j) {
                Consent storage consent =
                    _consents[_key(request.patient, request.grantee, request.scopes[i], request.purposes[j])];
                if (consent.status == ConsentStatus.Granted) {
                    _revoke(consent, request.patient, request.grantee, request.scopes[i], request.purposes[j], signer);
                    revoked = true;
                }
            }
        }
        if (!revoked) {
            revert ConsentRegistryNotGranted(request.patient, request.grantee, request.scopes[0], request.purposes[0]);
        }
        emit ConsentSetRevoked(request.patient, request.grantee, request.terms, signer);
    }

    // --- guardians -----------------------------------------------------------------------

    /// @inheritdoc IConsentRegistry
    function appointGuardian(address guardian, uint64 validUntil) external {
        _appointGuardian(msg.sender, guardian, validUntil);
    }

    /// @inheritdoc IConsentRegistry
    function removeGuardian(address guardian) external {
        _removeGuardian(msg.sender, guardian);
    }

    /// @inheritdoc IConsentRegistry
    function setGuardianBySig(
        address patient,
        address guardian,
        uint64 validUntil,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _requireLive(deadline);
        if (patient == address(0)) revert ConsentRegistryZeroAddress();
        bytes32 digest = _guardianDigest(patient, guardian, validUntil, _useNonce(patient), deadline);
        _requireSignature(patient, digest, signature);
        if (validUntil == 0) {
            _removeGuardian(patient, guardian);
        } else {
            _appointGuardian(patient, guardian, validUntil);
        }
    }

    // --- break-glass ---------------------------------------------------------------------

    /// @inheritdoc IConsentRegistry
    function recordEmergencyAccess(address patient, bytes32 scope, bytes32 purpose, bytes32 reason)
        external
        onlyRole(EMERGENCY_ROLE)
    {
        if (patient == address(0)) revert ConsentRegistryZeroAddress();
        if (scope == bytes32(0) || reason == bytes32(0)) revert ConsentRegistryZeroCode();
        if (!_isEmergencyPurpose[purpose]) revert ConsentRegistryNotEmergencyPurpose(purpose);
        emit EmergencyAccessRecorded(patient, msg.sender, scope, purpose, reason);
    }

    /// @inheritdoc IConsentRegistry
    function isEmergencyPurpose(bytes32 purpose) external view returns (bool) {
        return _isEmergencyPurpose[purpose];
    }

    /// @inheritdoc IConsentRegistry
    function emergencyPurposes() external view returns (bytes32[] memory) {
        return _emergencyPurposes;
    }

    // --- views ---------------------------------------------------------------------------

    /// @inheritdoc IConsentRegistry
    function isPermitted(address patient, address grantee, bytes32 scope, bytes32 purpose)
        external
        view
        returns (bool)
    {
        return _isActive(_consents[_key(patient, grantee, scope, purpose)])
            || _isActive(_consents[_key(patient, grantee, ALL_DATA, purpose)]);
    }

    /// @inheritdoc IConsentRegistry
    function consentOf(address patient, address grantee, bytes32 scope, bytes32 purpose)
        external
        view
        returns (Consent memory)
    {
        return _consents[_key(patient, grantee, scope, purpose)];
    }

    /// @inheritdoc IConsentRegistry
    function guardianUntil(address patient, address guardian) external view returns (uint64) {
        return _guardians[patient][guardian];
    }

    /// @inheritdoc IConsentRegistry
    function grantDigest(GrantRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _grantDigest(request, signer, nonce, deadline);
    }

    /// @inheritdoc IConsentRegistry
    function revocationDigest(RevokeRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _revocationDigest(request, signer, nonce, deadline);
    }

    /// @inheritdoc IConsentRegistry
    function grantSetDigest(GrantSetRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _grantSetDigest(request, signer, nonce, deadline);
    }

    /// @inheritdoc IConsentRegistry
    function revocationSetDigest(RevokeSetRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _revocationSetDigest(request, signer, nonce, deadline);
    }

    /// @inheritdoc IConsentRegistry
    function guardianDigest(address patient, address guardian, uint64 validUntil, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _guardianDigest(patient, guardian, validUntil, nonce, deadline);
    }

    // --- internals -----------------------------------------------------------------------

    function _grantRequest(GrantRequest calldata request, address actor) private {
        _grant(
            request.patient,
            request.grantee,
            request.scope,
            request.purpose,
            request.validFrom,
            request.validUntil,
            actor
        );
    }

    function _grant(
        address patient,
        address grantee,
        bytes32 scope,
        bytes32 purpose,
        uint64 validFrom,
        uint64 validUntil,
        address actor
    ) private {
        if (grantee == address(0)) revert ConsentRegistryZeroAddress();
        if (scope == bytes32(0) || purpose == bytes32(0)) revert ConsentRegistryZeroCode();
        if (validFrom >= validUntil || validUntil <= block.timestamp) {
            revert ConsentRegistryInvalidWindow(validFrom, validUntil);
        }
        _consents[_key(patient, grantee, scope, purpose)] = Consent({
            validFrom: validFrom,
            validUntil: validUntil,
            updatedAt: uint64(block.timestamp),
            status: ConsentStatus.Granted
        });
        emit ConsentGranted(patient, grantee, scope, purpose, validFrom, validUntil, actor);
    }

    function _revokeRequest(RevokeRequest calldata request, address actor) private {
        Consent storage consent = _consents[_key(request.patient, request.grantee, request.scope, request.purpose)];
        if (consent.status != ConsentStatus.Granted) {
            revert ConsentRegistryNotGranted(request.patient, request.grantee, request.scope, request.purpose);
        }
        _revoke(consent, request.patient, request.grantee, request.scope, request.purpose, actor);
    }

    function _revoke(
        Consent storage consent,
        address patient,
        address grantee,
        bytes32 scope,
        bytes32 purpose,
        address actor
    ) private {
        consent.status = ConsentStatus.Revoked;
        consent.updatedAt = uint64(block.timestamp);
        emit ConsentRevoked(patient, grantee, scope, purpose, actor);
    }

    /// @dev Reverts unless a consent document names at least one scope and one purpose and has a digest.
    function _requireSet(bytes32[] calldata scopes, bytes32[] calldata purposes, bytes32 terms) private pure {
        if (scopes.length == 0 || purposes.length == 0 || terms == bytes32(0)) revert ConsentRegistryEmptySet(terms);
    }

    function _appointGuardian(address patient, address guardian, uint64 validUntil) private {
        if (guardian == address(0)) revert ConsentRegistryZeroAddress();
        if (guardian == patient || validUntil <= block.timestamp) {
            revert ConsentRegistryInvalidGuardian(guardian, validUntil);
        }
        _guardians[patient][guardian] = validUntil;
        emit GuardianAppointed(patient, guardian, validUntil);
    }

    function _removeGuardian(address patient, address guardian) private {
        if (_guardians[patient][guardian] == 0) revert ConsentRegistryNotGuardian(patient, guardian);
        delete _guardians[patient][guardian];
        emit GuardianRemoved(patient, guardian);
    }

    /// @dev Reverts unless `actor` is `patient` or a guardian whose appointment has not expired.
    function _requireActor(address patient, address actor) private view {
        if (patient == address(0)) revert ConsentRegistryZeroAddress();
        if (actor != patient && _guardians[patient][actor] <= block.timestamp) {
            revert ConsentRegistryUnauthorizedActor(patient, actor);
        }
    }

    function _requireLive(uint256 deadline) private view {
        if (block.timestamp > deadline) revert ConsentRegistryExpiredSignature(deadline);
    }

    function _requireSignature(address signer, bytes32 digest, bytes calldata signature) private view {
        if (!SignatureChecker.isValidSignatureNowCalldata(signer, digest, signature)) {
            revert ConsentRegistryInvalidSignature(signer);
        }
    }

    function _isActive(Consent storage consent) private view returns (bool) {
        return consent.status == ConsentStatus.Granted && consent.validFrom <= block.timestamp
            && block.timestamp < consent.validUntil;
    }

    function _key(address patient, address grantee, bytes32 scope, bytes32 purpose) private pure returns (bytes32) {
        return keccak256(abi.encode(patient, grantee, scope, purpose));
    }

    function _grantDigest(GrantRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _GRANT_TYPEHASH,
                    request.patient,
                    request.grantee,
                    request.scope,
                    request.purpose,
                    request.validFrom,
                    request.validUntil,
                    signer,
                    nonce,
                    deadline
                )
            )
        );
    }

    function _revocationDigest(RevokeRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _REVOCATION_TYPEHASH,
                    request.patient,
                    request.grantee,
                    request.scope,
                    request.purpose,
                    signer,
                    nonce,
                    deadline
                )
            )
        );
    }

    function _grantSetDigest(GrantSetRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _GRANT_SET_TYPEHASH,
                    request.patient,
                    request.grantee,
                    keccak256(abi.encodePacked(request.scopes)),
                    keccak256(abi.encodePacked(request.purposes)),
                    request.validFrom,
                    request.validUntil,
                    request.terms,
                    signer,
                    nonce,
                    deadline
                )
            )
        );
    }

    function _revocationSetDigest(RevokeSetRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    _REVOCATION_SET_TYPEHASH,
                    request.patient,
                    request.grantee,
                    keccak256(abi.encodePacked(request.scopes)),
                    keccak256(abi.encodePacked(request.purposes)),
                    request.terms,
                    signer,
                    nonce,
                    deadline
                )
            )
        );
    }

    function _guardianDigest(address patient, address guardian, uint64 validUntil, uint256 nonce, uint256 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(_GUARDIAN_TYPEHASH, patient, guardian, validUntil, nonce, deadline)));
    }
}
