"""The ledger's own signing keys, kept encrypted at rest as Web3 Secret Storage keystore files.

Each key has one job (least privilege): ``admin`` deploys the contracts and holds their admin
roles, ``relayer`` pays the gas of patient-signed consent changes and holds no role, and each
organisation's anchoring key holds only ``ANCHORER_ROLE``. Keys are decrypted once per process and
never written anywhere in the clear.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.exceptions import InputError, IntegrityError, NotFoundError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Keyring:
    """Named keys in one directory, each an encrypted keystore file ``<name>.json``.

    Args:
        directory: Where the keystore files live (created with mode 0700).
        passphrase: Encrypts and decrypts every file.
        scrypt_n: scrypt cost parameter for files this keyring writes.
    """

    def __init__(self, directory: Path, passphrase: str, *, scrypt_n: int = 2**18) -> None:
        self.directory = Path(directory)
        self._passphrase = passphrase
        self._scrypt_n = scrypt_n
        self._unlocked: dict[str, LocalAccount] = {}

    def get(self, name: str) -> LocalAccount:
        """Decrypt and return an existing key."""
        path = self._path(name)
        if name in self._unlocked:
            return self._unlocked[name]
        if not path.exists():
            raise NotFoundError(f"no key named {name!r}", key=name)
        try:
            private_key = Account.decrypt(json.loads(path.read_text("utf-8")), self._passphrase)
        except ValueError as err:
            raise IntegrityError(f"cannot decrypt key {name!r}: wrong passphrase or corrupt file",
                                 key=name) from err
        account: LocalAccount = Account.from_key(private_key)
        self._unlocked[name] = account
        return account

    def get_or_create(self, name: str) -> LocalAccount:
        """Return the key ``name``, generating and storing a new one the first time."""
        if self._path(name).exists():
            return self.get(name)
        account: LocalAccount = Account.create()
        keystore = Account.encrypt(account.key, self._passphrase, kdf="scrypt", iterations=self._scrypt_n)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(self._path(name), json.dumps(keystore))
        self._unlocked[name] = account
        return account

    def names(self) -> list[str]:
        """Names of the stored keys."""
        return sorted(p.stem for p in self.directory.glob("*.json"))

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise InputError(f"invalid key name {name!r}", field="name")
        return self.directory / f"{name}.json"


def development_passphrase(directory: Path) -> str:
    """A random passphrase kept beside the keystore (mode 0600), for the embedded chain only."""
    path = Path(directory) / "passphrase"
    if not path.exists():
        Path(directory).mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(path, secrets.token_urlsafe(32))
    return path.read_text("utf-8").strip()


def write_private_file(path: Path, text: str) -> None:
    """Write a file readable only by its owner, atomically (a crash leaves the old file or none)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
