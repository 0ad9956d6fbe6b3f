// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title IConsentRegistry
 * @notice Patient consent to data access, held on chain. A patient (an address whose key the
 * patient holds) grants an organisation (`grantee`) access to a kind of data (`scope`, a bytes32
 * code, or {ALL_DATA} for everything) for a purpose of use (`purpose`, a bytes32 code such as
 * "TREAT", "ETREAT", "HPAYMT", "HRESCH") during a validity window, and may revoke it at any time.
 *
 * Every change is made either by the patient (or a guardian the patient appointed) sending the
 * transaction, or by anyone relaying their EIP-712 signature (a relayer pays the gas). Signatures
 * carry the patient's nonce and a deadline; contract wallets sign through ERC-1271.
 *
 * Break-glass access by an account holding `EMERGENCY_ROLE` needs no consent but is always
 * recorded as an event, and only for an emergency purpose of use: one of the set the registry was
 * deployed with (for example "ETREAT", emergency treatment, and "BTG", break the glass). Research,
 * payment or any other purpose needs the patient's consent.
 */
interface IConsentRegistry {
    /// @notice Lifecycle of one (patient, grantee, scope, purpose) consent.
    enum ConsentStatus {
        None,
        Granted,
        Revoked
    }

    /// @notice The current state of one consent.
    struct Consent {
        /// @dev Start of the validity window (unix seconds, inclusive).
        uint64 validFrom;
        /// @dev End of the validity window (unix seconds, exclusive).
        uint64 validUntil;
        /// @dev Timestamp of the last grant or revocation.
        uint64 updatedAt;
        ConsentStatus status;
    }

    /// @notice What a grant says: `patient` lets `grantee` access `scope` data for `purpose`
    /// from `validFrom` until (excluding) `validUntil`.
    struct GrantRequest {
        address patient;
        address grantee;
        bytes32 scope;
        bytes32 purpose;
        uint64 validFrom;
        uint64 validUntil;
    }

    /// @notice What a revocation says: `patient` withdraws `grantee`'s access to `scope` for `purpose`.
    struct RevokeRequest {
        address patient;
        address grantee;
        bytes32 scope;
        bytes32 purpose;
    }

    /// @notice A consent document granted whole: `patient` lets `grantee` access each of `scopes` for
    /// each of `purposes` (every pair is one consent key) from `validFrom` until (excluding)
    /// `validUntil`, as the document whose digest is `terms` says (a FHIR Consent's RFC 8785 SHA-256).
    struct GrantSetRequest {
        address patient;
        address grantee;
        bytes32[] scopes;
        bytes32[] purposes;
        uint64 validFrom;
        uint64 validUntil;
        bytes32 terms;
    }

    /// @notice The withdrawal of the consent document `terms`: every key of `scopes` x `purposes`
    /// still granted to `grantee` is revoked.
    struct RevokeSetRequest {
        address patient;
        address grantee;
        bytes32[] scopes;
        bytes32[] purposes;
        bytes32 terms;
    }

    /// @notice An address argument (patient, grantee, guardian) is zero.
    error ConsentRegistryZeroAddress();

    /// @notice A scope, purpose or reason code is zero.
    error ConsentRegistryZeroCode();

    /// @notice The validity window is empty or already over.
    error ConsentRegistryInvalidWindow(uint64 validFrom, uint64 validUntil);

    /// @notice There is no granted consent to revoke for this key.
    error ConsentRegistryNotGranted(address patient, address grantee, bytes32 scope, bytes32 purpose);

    /// @notice `actor` is neither `patient` nor a guardian of `patient` whose appointment is current.
    error ConsentRegistryUnauthorizedActor(address patient, address actor);

    /// @notice The signature's deadline (`deadline`) has passed.
    error ConsentRegistryExpiredSignature(uint256 deadline);

    /// @notice The signature is not a valid signature of `signer` over the typed data.
    error ConsentRegistryInvalidSignature(address signer);

    /// @notice `guardian` cannot be appointed (the patient themself) or a guardian's expiry is in the past.
    error ConsentRegistryInvalidGuardian(address guardian, uint64 validUntil);

    /// @notice `guardian` is not currently a guardian of `patient`.
    error ConsentRegistryNotGuardian(address patient, address guardian);

    /// @notice `purpose` is not one of the emergency purposes break-glass access may be recorded for.
    error ConsentRegistryNotEmergencyPurpose(bytes32 purpose);

    /// @notice A consent document names no scope or no purpose, or its `terms` digest is zero.
    error ConsentRegistryEmptySet(bytes32 terms);

    /// @notice `actor` granted `grantee` access to `scope` data of `patient` for `purpose`.
    event ConsentGranted(
        address indexed patient,
        address indexed grantee,
        bytes32 indexed scope,
        bytes32 purpose,
        uint64 validFrom,
        uint64 validUntil,
        address actor
    );

    /// @notice `actor` revoked `grantee`'s access to `scope` data of `patient` for `purpose`.
    event ConsentRevoked(
        address indexed patient, address indexed grantee, bytes32 indexed scope, bytes32 purpose, address actor
    );

    /// @notice `actor` granted `grantee` the consent document `terms` of `patient`; the document's keys
    /// were each announced by a {ConsentGranted} event just before, in the same transaction.
    event ConsentSetGranted(address indexed patient, address indexed grantee, bytes32 indexed terms, address actor);

    /// @notice `actor` withdrew the consent document `terms` of `patient` given to `grantee`; the keys it
    /// revoked were each announced by a {ConsentRevoked} event just before, in the same transaction.
    event ConsentSetRevoked(address indexed patient, address indexed grantee, bytes32 indexed terms, address actor);

    /// @notice `patient` appointed `guardian`, who may grant and revoke for them until `validUntil`.
    event GuardianAppointed(address indexed patient, address indexed guardian, uint64 validUntil);

    /// @notice `patient` removed `guardian`.
    event GuardianRemoved(address indexed patient, address indexed guardian);

    /// @notice `accessor` accessed `scope` data of `patient` without consent (break-glass), for the
    /// emergency purpose `purpose`, giving `reason`.
    event EmergencyAccessRecorded(
        address indexed patient, address indexed accessor, bytes32 indexed scope, bytes32 purpose, bytes32 reason
    );

    /**
     * @notice Grants consent, sent by the patient or one of their guardians.
     * @param request The consent to grant; replaces any earlier state of the same key.
     *
     * Requirements:
     * - the caller is `request.patient` or a current guardian of theirs;
     * - addresses and codes are non-zero; `validFrom < validUntil` and `validUntil` is in the future.
     *
     * Emits a {ConsentGranted} event.
     */
    function grant(GrantRequest calldata request) external;

    /**
     * @notice Revokes consent, sent by the patient or one of their guardians.
     * @param request The consent to revoke.
     *
     * Requirements:
     * - the caller is `request.patient` or a current guardian of theirs;
     * - the consent is in the `Granted` state.
     *
     * Emits a {ConsentRevoked} event.
     */
    function revoke(RevokeRequest calldata request) external;

    /**
     * @notice Grants consent on the strength of an EIP-712 `ConsentGrant` signature by `signer`.
     * @param request The consent to grant.
     * @param signer The patient or a current guardian; an EOA or an ERC-1271 contract wallet.
     * @param deadline Last timestamp at which the signature is accepted.
     * @param signature The signature over `ConsentGrant(..., signer, nonces(patient), deadline)`.
     *
     * Requirements: as {grant}, plus `block.timestamp <= deadline` and a valid signature using
     * the patient's current nonce (which is consumed).
     *
     * Emits a {ConsentGranted} event.
     */
    function grantBySig(GrantRequest calldata request, address signer, uint256 deadline, bytes calldata signature)
        external;

    /**
     * @notice Revokes consent on the strength of an EIP-712 `ConsentRevocation` signature by `signer`.
     * @param request The consent to revoke.
     * @param signer The patient or a current guardian; an EOA or an ERC-1271 contract wallet.
     * @param deadline Last timestamp at which the signature is accepted.
     * @param signature The signature over `ConsentRevocation(..., signer, nonces(patient), deadline)`.
     *
     * Requirements: as {revoke}, plus `block.timestamp <= deadline` and a valid signature using
     * the patient's current nonce (which is consumed).
     *
     * Emits a {ConsentRevoked} event.
     */
    function revokeBySig(RevokeRequest calldata request, address signer, uint256 deadline, bytes calldata signature)
        external;

    /**
     * @notice Grants every key of a consent document on the strength of one EIP-712 `ConsentGrantSet`
     * signature by `signer`, so that the chain names the exact document (`terms`) the grant came from.
     * @param request The document's keys (`scopes` x `purposes`), window and digest.
     * @param signer The patient or a current guardian; an EOA or an ERC-1271 contract wallet.
     * @param deadline Last timestamp at which the signature is accepted.
     * @param signature The signature over `ConsentGrantSet(..., signer, nonces(patient), deadline)`.
     *
     * Requirements: as {grantBySig} for every key, plus at least one scope and one purpose and a
     * non-zero `terms`.
     *
     * Emits a {ConsentGranted} event per key, then a {ConsentSetGranted} event.
     */
    function grantSetBySig(GrantSetRequest calldata request, address signer, uint256 deadline, bytes calldata signature)
        external;

    /**
     * @notice Withdraws a consent document on the strength of one EIP-712 `ConsentRevocationSet`
     * signature by `signer`: every key of `scopes` x `purposes` that is granted now is revoked, the
     * others (revoked already, or never granted) are left as they are.
     * @param request The document's keys and digest.
     * @param signer The patient or a current guardian; an EOA or an ERC-1271 contract wallet.
     * @param deadline Last timestamp at which the signature is accepted.
     * @param signature The signature over `ConsentRevocationSet(..., signer, nonces(patient), deadline)`.
     *
     * Requirements: as {revokeBySig}, except that one granted key of the set suffices; at least one
     * scope and one purpose and a non-zero `terms`.
     *
     * Emits a {ConsentRevoked} event per key revoked, then a {ConsentSetRevoked} event.
     */
    function revokeSetBySig(
        RevokeSetRequest calldata request,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @notice Appoints (or re-appoints with a new expiry) a guardian of the caller.
     * @param guardian Account that may grant and revoke for the caller.
     * @param validUntil Timestamp from which the appointment no longer holds.
     *
     * Requirements: `guardian` is non-zero and not the caller; `validUntil` is in the future.
     *
     * Emits a {GuardianAppointed} event.
     */
    function appointGuardian(address guardian, uint64 validUntil) external;

    /**
     * @notice Removes a guardian of the caller.
     * @param guardian A current guardian of the caller.
     *
     * Emits a {GuardianRemoved} event.
     */
    function removeGuardian(address guardian) external;

    /**
     * @notice Appoints or removes a guardian on the strength of the patient's EIP-712
     * `GuardianAppointment` signature. Only the patient can sign this, never a guardian.
     * @param patient The patient (an EOA or an ERC-1271 contract wallet).
     * @param guardian The guardian to appoint or remove.
     * @param validUntil New expiry; zero removes the guardian.
     * @param deadline Last timestamp at which the signature is accepted.
     * @param signature Signature over `GuardianAppointment(patient, guardian, validUntil, nonces(patient), deadline)`.
     *
     * Emits a {GuardianAppointed} or {GuardianRemoved} event.
     */
    function setGuardianBySig(
        address patient,
        address guardian,
        uint64 validUntil,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @notice Records a break-glass access to `patient`'s `scope` data by the caller.
     * @param patient Whose data was accessed.
     * @param scope What data was accessed ({ALL_DATA} for everything).
     * @param purpose The emergency purpose of use (one of {emergencyPurposes}).
     * @param reason Non-zero reason code (a code or a hash of an off-chain note, never free text).
     *
     * Requirements:
     * - the caller holds `EMERGENCY_ROLE`;
     * - `patient` is non-zero; `scope` and `reason` are non-zero codes;
     * - `purpose` is an emergency purpose ({isEmergencyPurpose}).
     *
     * Emits an {EmergencyAccessRecorded} event.
     */
    function recordEmergencyAccess(address patient, bytes32 scope, bytes32 purpose, bytes32 reason) external;

    /// @notice Whether break-glass access may be recorded for `purpose`.
    function isEmergencyPurpose(bytes32 purpose) external view returns (bool);

    /// @notice The emergency purposes break-glass access may be recorded for, as set at deployment.
    function emergencyPurposes() external view returns (bytes32[] memory);

    /**
     * @notice Whether `grantee` may now access `patient`'s `scope` data for `purpose`: a granted
     * consent for that scope, or for {ALL_DATA}, whose window contains the current block's time.
     * @dev Constant gas: two storage reads whatever the history.
     */
    function isPermitted(address patient, address grantee, bytes32 scope, bytes32 purpose)
        external
        view
        returns (bool);

    /// @notice The stored state of one consent key (status `None` if never granted).
    function consentOf(address patient, address grantee, bytes32 scope, bytes32 purpose)
        external
        view
        returns (Consent memory);

    /// @notice Expiry of `guardian`'s appointment by `patient` (zero if not appointed).
    function guardianUntil(address patient, address guardian) external view returns (uint64);

    /// @notice The EIP-712 digest a `signer` signs to authorise `request` with `nonce` and `deadline`.
    function grantDigest(GrantRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest a `signer` signs to authorise `request` with `nonce` and `deadline`.
    function revocationDigest(RevokeRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest a `signer` signs to authorise the consent document `request`.
    function grantSetDigest(GrantSetRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest a `signer` signs to withdraw the consent document `request`.
    function revocationSetDigest(RevokeSetRequest calldata request, address signer, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);

    /// @notice The EIP-712 digest `patient` signs to set `guardian`'s expiry to `validUntil`.
    function guardianDigest(address patient, address guardian, uint64 validUntil, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32);
}
