"""Tokens that travel by mail, and the keyed digests that find accounts by email.

Why a mailed token is derived rather than stored: the command that asks for a mail
records only a random ``request_id`` (in the event) and the hash of the token (as the
id of a ``MailedToken``). The mail policy, a consumer running later and possibly in
another process, re-derives the token as HMAC-SHA256(MEDCODE_SECRET_KEY, purpose +
request_id). So:

- no event, snapshot, Kafka topic or export ever holds a usable token: reading the
  whole log does not let anyone verify an address or reset a password;
- the policy needs no private channel from the command: the event is enough, and a
  redelivered event derives the same token (the same mail, idempotent);
- the store can check a token it never saw in clear: hash it, get the aggregate.

Keep MEDCODE_SECRET_KEY for the life of the store: it also keys the digests by which
accounts are found from an email (``keyed_digest``: the store holds no email, and no
unkeyed hash that a list of addresses could be checked against). Changing it invalidates
every token in flight, and makes existing accounts unfindable by email until they are
re-keyed, which medcode does not do for you.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID


def derive_token(secret: bytes, purpose: str, request_id: UUID) -> str:
    mac = hmac.new(secret, f"{purpose}:{request_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def keyed_digest(secret: bytes, purpose: str, value: str) -> str:
    """A digest of ``value`` that only the holder of the secret can compute (so an email
    cannot be confirmed by hashing guesses against the store's aggregate ids)."""
    return hmac.new(secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
