// Reference oracle for tests/test_merkle.py: builds OpenZeppelin StandardMerkleTrees.
// stdin:  {"trees": [[[salt, digest], ...], ...]}   (0x-prefixed bytes32 hex)
// stdout: {"trees": [{"root", "proofs": [proof of value i, ...], "dump"}, ...]}
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const trees = input.trees.map(values => {
  const tree = StandardMerkleTree.of(values, ['bytes32', 'bytes32']);
  return {
    root: tree.root,
    proofs: values.map((_, i) => tree.getProof(i)),
    proofsByValue: values.map(value => tree.getProof(value)),
    dump: tree.dump(),
  };
});
process.stdout.write(JSON.stringify({ trees }));
