"""The ledger's own signing keys, kept encrypted at rest as Web3 Secret Storage keystore documents.

Each key has one job (least privilege): ``admin`` deploys the contracts and holds their admin
roles, ``relayer`` pays the gas of patient-signed consent changes and holds no role, and each
organisation's anchoring key holds only ``ANCHORER_ROLE``. Keys are decrypted once per process and
never written anywhere in the clear.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.exceptions import InputError, IntegrityError, NotFoundError
from ledger.store.shared_files import SharedFiles, write_private_file

DEFAULT_SCRYPT_N = 2**18
"""scrypt cost of new keystore files: the Web3 Secret Storage default."""
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Keyring:
    """Named keys, each an encrypted keystore document ``keys/<name>.json``: files in the data
    directory, or (several replicas) rows in the shared store (see :mod:`ledger.store.shared_files`).

    Args:
        documents: Where the keystore documents live.
        passphrase: Encrypts and decrypts every key.
        scrypt_n: scrypt cost parameter for keys this keyring writes.
    """

    def __init__(self, documents: SharedFiles, passphrase: str, *, scrypt_n: int = DEFAULT_SCRYPT_N) -> None:
        self.documents = documents
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._unlocked: dict[str, LocalAccount] = {}

    def get(self, name: str) -> LocalAccount:
        """Decrypt and return an existing key."""
        document = self._document(name)
        if name in self._unlocked:
            return self._unlocked[name]
        stored = self.documents.read(document)
        if stored is None:
            raise NotFoundError(f"no key named {name!r}", key=name)
        return self._unlock(name, stored)

    def get_or_create(self, name: str) -> LocalAccount:
        """Return the key ``name``, generating and storing a new one the first time (if another
        process stores one of that name at the same moment, both use the one stored first)."""
        document = self._document(name)
        if name in self._unlocked:
            return self._unlocked[name]
        stored = self.documents.read(document)
        if stored is None:
            account: LocalAccount = Account.create()
            keystore = Account.encrypt(account.key, self._passphrase, kdf="scrypt", iterations=self._scrypt_n)
            stored = self.documents.create(document, json.dumps(keystore))
        return self._unlock(name, stored)

    def names(self) -> list[str]:
        """Names of the stored keys."""
        return sorted(n.removesuffix(".json") for n in self.documents.names("keys/") if n.endswith(".json"))

    def _unlock(self, name: str, stored: str) -> LocalAccount:
        try:
            private_key = Account.decrypt(json.loads(stored), self._passphrase)
        except ValueError as err:
            raise IntegrityError(f"cannot decrypt key {name!r}: wrong passphrase or corrupt file", key=name) from err
        account: LocalAccount = Account.from_key(private_key)
        self._unlocked[name] = account
        return account

    @staticmethod
    def _document(name: str) -> str:
        if not _NAME.fullmatch(name):
            raise InputError(f"invalid key name {name!r}", field="name")
        return f"keys/{name}.json"


def development_passphrase(directory: Path) -> str:
    """A random passphrase kept beside the keystore (mode 0600), for the embedded chain only."""
    path = Path(directory) / "passphrase"
    if not path.exists():
        Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(path, secrets.token_urlsafe(32))
    return path.read_text("utf-8").strip()
