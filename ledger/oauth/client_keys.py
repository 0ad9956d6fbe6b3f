"""The public keys a SMART client registers: a JWKS of RS384 or ES384 verification keys, nothing private.

What a registered JWKS may hold:

* ``{"keys": [...]}`` with 1 to :data:`MAX_KEYS` keys, each with a ``kid`` of its own: a client
  assertion names its key by ``kid`` (SMART requires the header), and the key is found by it.
* RSA keys of :data:`MIN_RSA_BITS` to :data:`MAX_RSA_BITS` bits (for RS384) and EC keys on P-384
  (ES384's curve); no other key type or curve.
* No private member (``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``oth``, a symmetric ``k``): a set
  holding one is refused whole and the answer says why, since that private key has been exposed
  and must be replaced, not registered.
* ``alg``, if given, the key type's algorithm; ``use``, if given, ``sig``; ``key_ops``, if given,
  including ``verify``.

The set is stored as joserfc exports its public keys (``kid``, ``alg`` and ``use`` kept), whatever
else the admin sent. Rotation is by replacing the whole set: register the new key beside the old,
switch the client, then register the set without the old. Fetching a client's keys from a
``jwks_uri`` at token time is out of scope: keys are registered by an admin, and the token endpoint
never reaches out to the network.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, import_key

from ledger.exceptions import InputError

MAX_KEYS = 10
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
"""RS384 needs 2048 bits at least; more than 8192 only makes every verification slow."""
MAX_KID_LENGTH = 128
ALGORITHM_OF_KEY_TYPE = {"RSA": "RS384", "EC": "ES384"}
EC_CURVE = "P-384"
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
KEPT_MEMBERS = ("kty", "kid", "alg", "use")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_client_jwks(document: Mapping[str, Any]) -> KeySet:
    """The client's verification keys from a JWKS an admin sent; :class:`InputError` naming the key
    and the rule it breaks otherwise."""
    keys = document.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise InputError(f"a JWKS needs a list 'keys' of 1 to {MAX_KEYS} keys", field="keys")
    parsed = [_public_key(key, f"keys[{i}]") for i, key in enumerate(keys)]
    kids = [key.kid for key in parsed]
    if len(set(kids)) != len(kids):
        raise InputError("every key needs a kid of its own (two keys share one)", field="keys")
    return KeySet(parsed)


def _public_key(member: Any, field: str) -> Key:
    if not isinstance(member, dict):
        raise InputError("a key must be a JSON object (a JWK)", field=field)
    private = sorted(PRIVATE_MEMBERS.intersection(member))
    if private:
        raise InputError(
            f"this JWK holds private key material ({', '.join(private)}): register public keys only, and "
            "replace this key, since its private part has left its holder",
            field=field,
            private_members=private,
        )
    kty, kid = member.get("kty"), member.get("kid")
    if not isinstance(kty, str) or kty not in ALGORITHM_OF_KEY_TYPE:
        raise InputError("the key type (kty) must be RSA or EC", field=f"{field}.kty")
    if not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KID_LENGTH:
        raise InputError(f"every key needs a kid (a string of 1 to {MAX_KID_LENGTH} characters)", field=f"{field}.kid")
    _check_use(member, ALGORITHM_OF_KEY_TYPE[kty], field)
    if kty == "EC" and member.get("crv") != EC_CURVE:
        raise InputError(f"an EC key must be on {EC_CURVE} (ES384)", field=f"{field}.crv")
    if kty == "RSA" and not MIN_RSA_BITS <= _modulus_bits(member.get("n")) <= MAX_RSA_BITS:  # before joserfc warns
        raise InputError(f"an RSA key needs a modulus of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits", field=f"{field}.n")
    try:
        return import_key(member)
    except (JoseError, ValueError, TypeError) as err:
        raise InputError(f"not a valid {kty} public key", field=field) from err


def _modulus_bits(n: Any) -> int:
    """The bit length of an RSA key's base64url ``n`` (0 if it is not base64url)."""
    if not isinstance(n, str) or not _BASE64URL.match(n):
        return 0
    try:
        modulus = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:  # a length no base64 text has
        return 0
    return int.from_bytes(modulus, "big").bit_length()


def _check_use(member: Mapping[str, Any], algorithm: str, field: str) -> None:
    if member.get("alg", algorithm) != algorithm:
        raise InputError(f"{member['kty']} keys sign with {algorithm} only here", field=f"{field}.alg")
    if member.get("use", "sig") != "sig":
        raise InputError("the key's use must be sig", field=f"{field}.use")
    operations = member.get("key_ops", ["verify"])
    if not isinstance(operations, list) or "verify" not in operations:
        raise InputError("the key's key_ops must include verify", field=f"{field}.key_ops")


def jwks_json(keys: KeySet) -> str:
    """The set as stored and shown: public parameters, with ``kid``, ``alg`` and ``use`` if given."""
    exported = []
    for key in keys:
        public = key.as_dict(private=False)
        exported.append({k: v for k, v in public.items() if k in key.value_registry or k in KEPT_MEMBERS})
    return json.dumps({"keys": exported}, sort_keys=True, separators=(",", ":"))


def load_client_jwks(text: str) -> KeySet:
    """A stored set (written by :func:`jwks_json`), to verify an assertion with."""
    return KeySet.import_key_set(json.loads(text))
