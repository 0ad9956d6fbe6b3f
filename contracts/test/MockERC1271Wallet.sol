// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/**
 * @title MockERC1271Wallet
 * @notice Test-only contract wallet: accepts a signature when its owner's key made it.
 * Lets the tests show that a patient holding a smart-contract wallet can consent by signature.
 */
contract MockERC1271Wallet is IERC1271 {
    address private immutable _owner;

    /// @param owner The EOA whose signatures the wallet accepts.
    constructor(address owner) {
        _owner = owner;
    }

    /// @notice ERC-1271: `0x1626ba7e` when the owner signed `hash`, else `0xffffffff`.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hash, signature);
        if (err == ECDSA.RecoverError.NoError && recovered == _owner) return IERC1271.isValidSignature.selector;
        return 0xffffffff;
    }

    /// @notice Lets the wallet's owner send any call from the wallet (to act as a patient directly).
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        require(msg.sender == _owner, "MockERC1271Wallet: not owner");
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }
}
