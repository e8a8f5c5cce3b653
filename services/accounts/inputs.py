"""What a person types in, checked and put in canonical form: emails and passwords; and
the client address a per-address cap counts against."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from services.accounts.failures import InvalidEmail, PasswordTooLong, WeakPassword

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # NIST asks for at least 64; the issue for at least 128
MAX_EMAIL = 254
_EMAIL = re.compile(r"[^@\s\"(),:;<>\[\]\\]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
                    r"(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})")


def normalise_email(raw: str) -> str:
    """The canonical form of an email (trimmed, lower case); InvalidEmail when malformed.

    The whole address is lower-cased: mail providers treat local parts case-insensitively
    in practice, and "Ann@x.org" and "ann@x.org" must be one account.
    """
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email) or ".." in email:
        raise InvalidEmail("Enter a valid email address, like name@example.com.")
    return email


def check_password(raw: str) -> str:
    """The password to hash (NFKC-normalised, as NIST 800-63B advises), or a typed error.

    Length is the only rule: composition rules make passwords weaker, not stronger.
    """
    password = unicodedata.normalize("NFKC", raw)
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"Use at least {MIN_PASSWORD} characters for your password.")
    if len(password) > MAX_PASSWORD:
        raise PasswordTooLong(f"Use at most {MAX_PASSWORD} characters for your password.")
    return password


def client_key(address: str | None) -> str:
    """Who a guest-session cap counts against: an IPv4 address or an IPv6 /64.

    One IPv6 subscriber usually holds a whole /64, so counting single IPv6 addresses
    would let a client reset its quota just by changing address.
    """
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)
