"""Password hashing: argon2id with the OWASP Password Storage Cheat Sheet parameters.

OWASP's first recommended configuration is argon2id with 19 MiB of memory, 2
iterations and 1 degree of parallelism. Verification also runs for unknown emails
(against a hash of a random password) so that answer times do not reveal which
emails have accounts.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

OWASP = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32,
                       salt_len=16, type=Type.ID)


class Passwords:
    def __init__(self, hasher: PasswordHasher = OWASP) -> None:
        self.hasher = hasher
        self._decoy = hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches; with no stored hash, spend the same time."""
        try:
            return self.hasher.verify(stored or self._decoy, password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """True when ``stored`` was made with other parameters than today's."""
        return self.hasher.check_needs_rehash(stored)
