// Checking an accounting of disclosures in the browser, entry by entry, trusting nothing the service says.
//
// Local steps (ethers, no network): the entry says what its anchored document says ("entry"); the
// document's SHA-256 over its RFC 8785 form is the receipt's digest ("digest"); the leaf is
// keccak256(keccak256(salt || digest)) ("leaf"); the Merkle proof leads from the leaf to the root
// under OpenZeppelin's StandardMerkleTree rules, sorted pairs ("proof"). The same rules as
// ledger/records/verification.py, step names included; tests/js/page_receipts.mjs checks them
// against @openzeppelin/merkle-tree.
//
// Chain steps: the root anchored by the receipt's account in the receipt's block, at its time, in its
// transaction, with its leaf count, on the chain and RecordAnchor of this deployment. Asked of the
// public node (PublicNode: eth_call anchorOf, eth_getTransactionReceipt) when the service names one,
// else of the service's own node through POST /v1/verify (ServiceNode); the page says which.
import * as ethers from "./vendor/ethers.js";

const HEX32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const RECORD_ANCHOR = new ethers.Interface([
  "function anchorOf(address anchorer, bytes32 root) view returns (tuple(address anchorer, uint48 blockNumber, uint48 anchoredAt))",
  "event RootAnchored(bytes32 indexed root, address indexed anchorer, uint256 leafCount)",
]);
const ROOT_ANCHORED = RECORD_ANCHOR.getEvent("RootAnchored").topicHash;
export const CHAIN_STEPS = ["chain", "contract", "anchored", "anchorer_role", "block", "anchorer", "time",
  "transaction", "leaf_count"];
const RPC_TIMEOUT_MS = 15000;
const VERIFY_RETRIES = 5;

/** A step's outcome, as ledger/records/verification.py reports it. */
const check = (step, ok, detail) => ({ step, ok, detail });

/** The node could not be asked: the entry is then neither valid nor invalid. */
export class UncheckedError extends Error {}

// --- local steps ---------------------------------------------------------------------------------

/** RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, ECMAScript number and
 *  string forms (which JCS adopts), no whitespace. */
export function canonicalJson(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError("JSON has no non-finite numbers");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    const members = Object.keys(value).sort().map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`);
    return `{${members.join(",")}}`;
  }
  throw new TypeError(`no JSON value: ${typeof value}`);
}

/** SHA-256 of the document's canonical form, 0x-hex. */
export const documentDigest = (document) => ethers.sha256(ethers.toUtf8Bytes(canonicalJson(document)));

/** The StandardMerkleTree leaf of the value [salt, digest] (leaf encoding ["bytes32", "bytes32"]). */
export const leafOf = (salt, digest) => ethers.keccak256(ethers.keccak256(ethers.concat([salt, digest])));

/** OpenZeppelin's hashPair: the smaller node first. */
export function hashPair(a, b) {
  const [x, y] = a.toLowerCase() < b.toLowerCase() ? [a, b] : [b, a];
  return ethers.keccak256(ethers.concat([x, y]));
}

/** The root a proof leads to from `leaf` (MerkleProof.processProof). */
export const processProof = (leaf, proof) => proof.reduce(hashPair, leaf);

/** Whether a path of `length` siblings fits a tree of `leafCount` leaves (OpenZeppelin's complete tree). */
export function proofFits(leafCount, length) {
  if (!Number.isInteger(leafCount) || leafCount < 1) return false;
  const bits = (n) => BigInt(n).toString(2).length;
  return length === bits(leafCount) - 1 || length === bits(2 * leafCount - 1) - 1;
}

const RECEIPT_FIELDS = {
  chainId: (v) => Number.isSafeInteger(v) && v > 0,
  contract: (v) => ADDRESS.test(v),
  transactionHash: (v) => HEX32.test(v),
  blockNumber: (v) => Number.isSafeInteger(v) && v >= 0,
  anchoredAt: (v) => Number.isSafeInteger(v) && v >= 0,
  anchorer: (v) => ADDRESS.test(v),
  root: (v) => HEX32.test(v),
  leafCount: (v) => Number.isSafeInteger(v) && v >= 1,
  leaf: (v) => HEX32.test(v),
  proof: (v) => Array.isArray(v) && v.length <= 64 && v.every((node) => HEX32.test(node)),
  digest: (v) => HEX32.test(v),
  salt: (v) => HEX32.test(v),
};

function parseCheck(receipt) {
  if (receipt?.type !== "careledger-receipt" || receipt.version !== 2) {
    return check("parse", false, "malformed receipt: not a version 2 CareLedger receipt");
  }
  const bad = Object.entries(RECEIPT_FIELDS).filter(([name, ok]) => !ok(receipt[name])).map(([name]) => name);
  return check("parse", bad.length === 0, bad.length ? `malformed receipt: ${bad.join(", ")}` : "the receipt is well-formed");
}

const sameAddress = (a, b) => typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();

/** The entry's shown facts against its anchored document: what the page shows is what was anchored. */
function entryCheck(entry, patient) {
  const doc = entry.document || {};
  const differs = [
    ["patient", sameAddress(doc.patient, patient)],
    ["recipient", doc.organisation?.name === entry.recipient?.name
      && sameAddress(doc.organisation?.address, entry.recipient?.account)],
    ["scope", doc.scope === entry.scope],
    ["purpose", doc.purpose === entry.purpose],
    ["decision", doc.decision === entry.decision],
    ["reason", (doc.reason ?? null) === (entry.reason ?? null)],
    ["break-glass transaction", (doc.breakGlassTx ?? null) === (entry.breakGlassTx ?? null)],
    ["date", doc.time === entry.date],
  ].filter(([, same]) => !same).map(([name]) => name);
  return check("entry", differs.length === 0, differs.length
    ? `the entry differs from its anchored document: ${differs.join(", ")}` : "the entry is its anchored document");
}

/** Every local step of one entry, in order, stopping at the first that cannot go on. */
export function localChecks(entry, patient) {
  const receipt = entry.receipt;
  const checks = [parseCheck(receipt)];
  if (!checks[0].ok) return checks;
  checks.push(entryCheck(entry, patient));
  let digest;
  try {
    digest = documentDigest(entry.document);
  } catch {
    digest = null;
  }
  checks.push(check("digest", digest === receipt.digest.toLowerCase(),
    digest === receipt.digest.toLowerCase() ? "the document's SHA-256 digest matches the receipt"
      : "the document does not match the receipt's digest"));
  const leaf = leafOf(receipt.salt, receipt.digest);
  const leafOk = leaf === receipt.leaf.toLowerCase();
  checks.push(check("leaf", leafOk, leafOk ? "leaf = keccak256(keccak256(salt || digest)) matches"
    : "the salt and digest do not give the receipt's leaf"));
  if (!proofFits(receipt.leafCount, receipt.proof.length)) {
    checks.push(check("proof", false, `the proof does not lead from the leaf to the receipt's root: `
      + `${receipt.proof.length} siblings is no path in a tree of ${receipt.leafCount} leaves`));
  } else {
    const ok = processProof(receipt.leaf, receipt.proof) === receipt.root.toLowerCase();
    checks.push(check("proof", ok, ok ? "the proof leads from the leaf to the root"
      : "the proof does not lead from the leaf to the receipt's root"));
  }
  return checks;
}

// --- chain steps ---------------------------------------------------------------------------------

/** What a receipt claims about the chain, as one key: receipts of one batch share one lookup. */
const claimKey = (r) => [r.chainId, r.contract, r.anchorer, r.root, r.blockNumber, r.anchoredAt,
  r.transactionHash, r.leafCount].join("|").toLowerCase();

/** Compares a receipt's claims with what a node says (`facts`: null when the root was never anchored). */
function compareClaims(receipt, deployment, chainId, facts) {
  const onChain = chainId === receipt.chainId && chainId === deployment.chainId;
  const checks = [check("chain", onChain, onChain ? "the node is on the receipt's chain"
    : `the node is on chain ${chainId}, the receipt names ${receipt.chainId}, this ledger is on ${deployment.chainId}`)];
  if (!checks.at(-1).ok) return checks;
  const contract = sameAddress(receipt.contract, deployment.recordAnchor);
  checks.push(check("contract", contract, contract ? "the receipt names this deployment's RecordAnchor"
    : "the receipt names another contract"));
  if (!contract) return checks;
  checks.push(check("anchored", facts !== null, facts ? "the root is anchored on chain by the receipt's anchorer"
    : "the root was never anchored on chain by the receipt's anchorer"));
  if (!facts) return checks;
  const same = (step, ok, holds, fails) => checks.push(check(step, ok, ok ? holds : fails));
  same("block", facts.blockNumber === receipt.blockNumber, "anchored in the receipt's block",
    "anchored in another block than the receipt says");
  same("anchorer", sameAddress(facts.anchorer, receipt.anchorer), "anchored by the receipt's account",
    "anchored by another account than the receipt says");
  same("time", facts.anchoredAt === receipt.anchoredAt, "anchored at the receipt's time",
    "anchored at another time than the receipt says");
  same("transaction", facts.leafCount !== null, "anchored in the receipt's transaction",
    "the RootAnchored event is in another transaction");
  if (facts.leafCount !== null) {
    same("leaf_count", facts.leafCount === receipt.leafCount, "the anchored batch has the receipt's leaf count",
      "the RootAnchored event states another leaf count");
  }
  return checks;
}

/** A public JSON-RPC node: the page asks it directly (its origin is in the page's connect-src). */
export class PublicNode {
  constructor(url) {
    this.url = url;
    this.describe = `the public node ${url}`;
    this.lookups = new Map();
    this.id = 0;
  }

  async rpc(method, params) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), RPC_TIMEOUT_MS);
    try {
      const response = await fetch(this.url, {
        method: "POST", headers: { "Content-Type": "application/json" }, signal: controller.signal,
        body: JSON.stringify({ jsonrpc: "2.0", id: (this.id += 1), method, params }),
      });
      const answer = await response.json();
      if (answer.error || !("result" in answer)) throw new Error(answer.error?.message || "no result");
      return answer.result;
    } catch (err) {
      throw new UncheckedError(`${this.describe} did not answer ${method}: ${err.message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  chainId() {
    this.chain ??= this.rpc("eth_chainId", []).then((hex) => Number(BigInt(hex)));
    return this.chain;
  }

  /** anchorOf(anchorer, root), and the leaf count of the RootAnchored event in the receipt's transaction. */
  async facts(receipt, deployment) {
    const data = RECORD_ANCHOR.encodeFunctionData("anchorOf", [receipt.anchorer, receipt.root]);
    const raw = await this.rpc("eth_call", [{ to: deployment.recordAnchor, data }, "latest"]);
    const [anchor] = RECORD_ANCHOR.decodeFunctionResult("anchorOf", raw);
    if (anchor.anchorer === ethers.ZeroAddress) return null;
    const mined = await this.rpc("eth_getTransactionReceipt", [receipt.transactionHash]);
    const log = (mined?.status === "0x1" && Number(BigInt(mined.blockNumber)) === Number(anchor.blockNumber))
      ? mined.logs.find((l) => sameAddress(l.address, deployment.recordAnchor) && l.topics[0] === ROOT_ANCHORED
        && l.topics[1] === receipt.root.toLowerCase()
        && sameAddress(ethers.dataSlice(l.topics[2], 12), anchor.anchorer))
      : undefined;
    return {
      anchorer: anchor.anchorer,
      blockNumber: Number(anchor.blockNumber),
      anchoredAt: Number(anchor.anchoredAt),
      leafCount: log ? Number(RECORD_ANCHOR.decodeEventLog("RootAnchored", log.data, log.topics).leafCount) : null,
    };
  }

  async chainChecks(receipt, deployment) {
    const key = claimKey(receipt);
    if (!this.lookups.has(key)) {
      this.lookups.set(key, (async () => {
        const chainId = await this.chainId();
        const claimed = chainId === receipt.chainId && chainId === deployment.chainId
          && sameAddress(receipt.contract, deployment.recordAnchor);
        const facts = claimed ? await this.facts(receipt, deployment) : null;
        return compareClaims(receipt, deployment, chainId, facts);
      })());
    }
    return this.lookups.get(key);
  }
}

/** No public node is configured: the service checks the root against its own node (POST /v1/verify). */
export class ServiceNode {
  constructor(origin) {
    this.describe = `the CareLedger service at ${origin} (its own node: no public node is configured)`;
    this.lookups = new Map();
  }

  async verify(receipt) {
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await fetch("/v1/verify", {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ receipt }),
        });
      } catch (err) {
        throw new UncheckedError(`${this.describe} could not be reached: ${err.message}`);
      }
      if (response.status === 429 && attempt < VERIFY_RETRIES) {
        const wait = Number(response.headers.get("Retry-After")) || 1;
        await new Promise((resolve) => { setTimeout(resolve, wait * 1000); });
        continue;
      }
      const body = await response.json().catch(() => null);
      if (response.ok) return body;
      if (response.status === 400 && body?.code === "invalid_proof") {
        return { checks: [{ step: "parse", ok: false, detail: body.message }] };
      }
      throw new UncheckedError(`${this.describe} could not check the root (HTTP ${response.status})`);
    }
  }

  async chainChecks(receipt) {
    const key = claimKey(receipt);
    if (!this.lookups.has(key)) {
      // The service compares the receipt with its own chain and RecordAnchor (this deployment's);
      // its local steps are left out: this page ran them itself.
      this.lookups.set(key, this.verify(receipt).then((answer) => answer.checks
        .filter((c) => CHAIN_STEPS.includes(c.step) || c.step === "parse")
        .map((c) => check(c.step, c.ok, c.detail))));
    }
    return this.lookups.get(key);
  }
}

/** The node the page asks about roots: the public one when the service names one, else the service. */
export function nodeFor(anchoring) {
  return anchoring.publicRpcUrl ? new PublicNode(anchoring.publicRpcUrl) : new ServiceNode(anchoring.service);
}

/** One entry's verdict: {state: valid | invalid | pending | unchecked, checks, failing}. */
export async function checkEntry(entry, patient, deployment, node) {
  if (!entry.receipt) return { state: "pending", checks: [], failing: null };
  const checks = localChecks(entry, patient);
  if (checks.every((c) => c.ok)) {
    try {
      checks.push(...await node.chainChecks(entry.receipt, deployment));
    } catch (err) {
      if (!(err instanceof UncheckedError)) throw err;
      return { state: "unchecked", checks, failing: null, problem: err.message };
    }
  }
  const failing = checks.find((c) => !c.ok) || null;
  return { state: failing ? "invalid" : "valid", checks, failing };
}
