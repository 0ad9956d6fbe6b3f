// The patient page's receipt checks (api/static/patient/receipts.js) beside @openzeppelin/merkle-tree.
// argv[2]: a copy of receipts.js with the pinned ethers beside it as vendor/ethers.js.
// stdin:  {"trees": [[[salt, digest], ...], ...], "tampered": [[treeIndex, valueIndex, proof], ...],
//          "documents": [json, ...], "fits": [[leafCount, length], ...]}
// stdout: {"trees": [{"root", "leaves": [OZ leafHash], "pageLeaves", "pageRoots": [processProof(leaf, OZ proof)]}],
//          "tampered": [{"oz": StandardMerkleTree.verify, "page": proofFits && processProof === root}],
//          "documents": [{"canonical", "digest"}], "fits": [bool, ...]}
import { pathToFileURL } from 'node:url';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';

const page = await import(pathToFileURL(process.argv[2]).href);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const ENCODING = ['bytes32', 'bytes32'];

const built = input.trees.map((values) => StandardMerkleTree.of(values, ENCODING));
const trees = built.map((tree, t) => {
  const values = input.trees[t];
  const leaves = values.map((value) => tree.leafHash(value));
  return {
    root: tree.root,
    leaves,
    pageLeaves: values.map(([salt, digest]) => page.leafOf(salt, digest)),
    pageRoots: values.map((_, i) => page.processProof(leaves[i], tree.getProof(i))),
  };
});
const tampered = input.tampered.map(([t, i, proof]) => {
  const tree = built[t];
  const [salt, digest] = input.trees[t][i];
  const leaf = page.leafOf(salt, digest);
  return {
    oz: StandardMerkleTree.verify(tree.root, ENCODING, input.trees[t][i], proof),
    page: page.proofFits(input.trees[t].length, proof.length) && page.processProof(leaf, proof) === tree.root,
  };
});
const documents = input.documents.map((doc) => ({ canonical: page.canonicalJson(doc), digest: page.documentDigest(doc) }));
const fits = input.fits.map(([count, length]) => page.proofFits(count, length));
process.stdout.write(JSON.stringify({ trees, tampered, documents, fits }));
