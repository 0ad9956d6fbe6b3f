// Peer for bench/merkle_rate.py: times @openzeppelin/merkle-tree building one StandardMerkleTree.
// stdin:  {"values": [[salt, digest], ...]}   (0x-prefixed bytes32 hex)
// stdout: {"root": "0x...", "seconds": build time of StandardMerkleTree.of alone}
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { values } = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const start = process.hrtime.bigint();
const tree = StandardMerkleTree.of(values, ['bytes32', 'bytes32']);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
process.stdout.write(JSON.stringify({ root: tree.root, seconds }));
