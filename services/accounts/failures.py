"""The accounts service's expected failures, each with a stable machine-readable code.

The aggregates and the application raise them; clients and the GraphQL layer turn the
code into an AuthError (and the RPC layer carries them across by name).
"""

from __future__ import annotations


class AccountsFailure(Exception):
    """An expected failure; ``code`` is stable and machine-readable (GraphQL AuthError)."""

    code = "ACCOUNTS_FAILURE"


class InvalidEmail(AccountsFailure):
    code = "INVALID_EMAIL"


class WeakPassword(AccountsFailure):
    code = "WEAK_PASSWORD"


class PasswordTooLong(AccountsFailure):
    code = "PASSWORD_TOO_LONG"


class EmailTaken(AccountsFailure):
    code = "EMAIL_TAKEN"


class InvalidCredentials(AccountsFailure):
    """Wrong password or unknown email: deliberately one error for both."""

    code = "INVALID_CREDENTIALS"

    def __init__(self, message: str, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay  # seconds to hold the answer back (slows guessing down)


class LoginLocked(AccountsFailure):
    code = "ACCOUNT_LOCKED"


class AlreadyRegistered(AccountsFailure):
    code = "ALREADY_REGISTERED"


class NotRegistered(AccountsFailure):
    code = "NOT_REGISTERED"


class UnknownViewer(AccountsFailure):
    code = "UNKNOWN_VIEWER"


class UnknownPlan(AccountsFailure):
    code = "UNKNOWN_PLAN"


class NoViewsLeft(AccountsFailure):
    code = "NO_VIEWS_LEFT"


class GuestSessionLimit(AccountsFailure):
    code = "GUEST_SESSION_LIMIT"


class SignInRequired(AccountsFailure):
    code = "SIGN_IN_REQUIRED"


class QuotaExceeded(AccountsFailure):
    code = "QUOTA_EXCEEDED"


class RegistrationLimit(AccountsFailure):
    code = "REGISTRATION_LIMIT"


class LoginAddressLimit(AccountsFailure):
    code = "TOO_MANY_ATTEMPTS"


class TokenInvalid(AccountsFailure):
    """Unknown, mistyped, or superseded by a newer mail: one error, so that a token
    guess learns nothing."""

    code = "TOKEN_INVALID"


class TokenExpired(AccountsFailure):
    code = "TOKEN_EXPIRED"


class TokenUsed(AccountsFailure):
    code = "TOKEN_USED"


class AlreadyVerified(AccountsFailure):
    code = "ALREADY_VERIFIED"


class ResendTooSoon(AccountsFailure):
    code = "RESEND_TOO_SOON"


class UnknownRole(AccountsFailure):
    code = "UNKNOWN_ROLE"


class NoCheckout(AccountsFailure):
    code = "NO_CHECKOUT"


class Contention(AccountsFailure):
    """Too many concurrent writers on one aggregate; the caller may simply retry."""

    code = "BUSY"
