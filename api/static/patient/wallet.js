// The patient's key. It never leaves the browser: either a local key kept encrypted in localStorage
// (Web3 Secret Storage JSON, scrypt) or a browser wallet (EIP-1193) that signs for us.
import * as ethers from "./vendor/ethers.js";
import { saveFile } from "./render.js";

const STORE = "careledger.patient.keystore";
// Demo strength: ethers' default is 2**17 (several seconds in a phone's JavaScript); 2**14 unlocks in
// well under a second. A real deployment should raise it (the keystore records N, so old files still open).
export const SCRYPT_N = 2 ** 14;
export const MIN_PASSPHRASE = 8;

export class WalletError extends Error {}

export function storedKeystore() {
  return localStorage.getItem(STORE);
}

/** The address of the stored key (the keystore JSON carries it in clear), or null. */
export function storedAddress() {
  const json = storedKeystore();
  if (!json) return null;
  try {
    return ethers.getAddress(`0x${JSON.parse(json).address.replace(/^0x/, "")}`);
  } catch {
    return null;
  }
}

function localSigner(wallet) {
  return {
    kind: "local",
    address: wallet.address,
    signTypedData({ domain, types, primaryType, message }) {
      return wallet.signTypedData(domain, { [primaryType]: types[primaryType] }, message);
    },
  };
}

/** Make a new key, store it encrypted under `passphrase`, and return a signer for it. */
export async function createKey(passphrase, onProgress) {
  if (passphrase.length < MIN_PASSPHRASE) {
    throw new WalletError(`Choose a passphrase of at least ${MIN_PASSPHRASE} characters.`);
  }
  const wallet = new ethers.Wallet(ethers.Wallet.createRandom().privateKey);
  const json = await ethers.encryptKeystoreJson({ address: wallet.address, privateKey: wallet.privateKey },
    passphrase, { scrypt: { N: SCRYPT_N }, progressCallback: onProgress });
  localStorage.setItem(STORE, json);
  return localSigner(wallet);
}

/** Decrypt the stored key with `passphrase`. */
export async function unlock(passphrase, onProgress) {
  const json = storedKeystore();
  if (!json) throw new WalletError("There is no key on this device. Create one or import a backup.");
  try {
    return localSigner(await ethers.Wallet.fromEncryptedJson(json, passphrase, onProgress));
  } catch (err) {
    if (/password/i.test(String(err?.message))) {
      throw new WalletError("That passphrase does not unlock this key. Check it and try again.");
    }
    throw new WalletError("The key stored on this device cannot be read. Import your backup file.");
  }
}

/** Keep a keystore JSON from a backup file (it stays encrypted; unlock it with its passphrase). */
export function importKeystore(text) {
  if (!ethers.isKeystoreJson(text)) throw new WalletError("That file is not a CareLedger key backup (keystore JSON).");
  localStorage.setItem(STORE, text);
  return storedAddress();
}

/** Offer the encrypted key as a file download (the backup). */
export function downloadKeystore() {
  const json = storedKeystore();
  if (!json) throw new WalletError("There is no key on this device to back up.");
  saveFile(json, "application/json", `careledger-key-${storedAddress()}.json`);
}

export function forgetKey() {
  localStorage.removeItem(STORE);
}

export function hasBrowserWallet() {
  return typeof window.ethereum?.request === "function";
}

/** Ask the browser wallet (EIP-1193) for an account; it signs with eth_signTypedData_v4. */
export async function connectBrowserWallet() {
  if (!hasBrowserWallet()) throw new WalletError("No browser wallet was found.");
  let accounts;
  try {
    accounts = await window.ethereum.request({ method: "eth_requestAccounts" });
  } catch (err) {
    throw new WalletError(err?.code === 4001 ? "You declined the connection in your wallet." : "Your wallet did not connect.");
  }
  const address = ethers.getAddress(accounts[0]);
  return {
    kind: "wallet",
    address,
    async signTypedData({ domain, types, primaryType, message }) {
      const typed = { domain, primaryType, message,
        types: { EIP712Domain: types.EIP712Domain, [primaryType]: types[primaryType] } };
      try {
        return await window.ethereum.request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(typed)] });
      } catch (err) {
        throw new WalletError(err?.code === 4001 ? "You declined the signature in your wallet."
          : "Your wallet could not sign (is it on the ledger's network?).");
      }
    },
  };
}
