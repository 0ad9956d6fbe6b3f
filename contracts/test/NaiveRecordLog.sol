// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title NaiveRecordLog
 * @notice Test-only baseline for `bench/gas.py`: the one-transaction-per-record design at its
 * cheapest, one event per record and no storage. It checks no role (a real one would pay for that
 * too), so the gas it measures is a lower bound for a naive anchor and the benchmark's ratio is
 * conservative.
 */
contract NaiveRecordLog {
    /// @notice `sender` logged the record `leaf`.
    event RecordLogged(bytes32 indexed leaf, address indexed sender);

    /**
     * @notice Logs one record in its own transaction.
     * @param leaf The record's leaf hash.
     *
     * Emits a {RecordLogged} event.
     */
    function logRecord(bytes32 leaf) external {
        emit RecordLogged(leaf, msg.sender);
    }
}
