"""Gravity postbacks (webhooks): signature and parsing.

Gravity signs the raw body with HMAC-SHA512 under a shared secret and sends the Base64 digest in the
`hmac-signature` header. Verification must run over the exact bytes received (re-serialising the JSON
would change them) and compare in constant time, before anything in the body is trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from gravity.conventions import POSTBACK_SIGNATURE_HEADER
from gravity.results import TransactionResult, parse_transaction

__all__ = ["POSTBACK_SIGNATURE_HEADER", "parse_postback", "sign", "verify"]


def sign(body: bytes, secret: str) -> str:
    """Base64 of HMAC-SHA512 over the raw body, as Gravity puts in `hmac-signature`."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha512).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(body: bytes, signature: str | None, secret: str) -> bool:
    """True only when `signature` is the correct signature of these exact bytes (constant time)."""
    if not signature or not secret:
        return False
    expected = sign(body, secret).encode("ascii")
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def parse_postback(body: bytes) -> TransactionResult:
    """The flat result object of a postback, as a typed result. Call only after `verify`.

    Raises `ValueError` for a body that is not a JSON object with an externalTransactionId.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"postback body is not JSON: {error.msg if hasattr(error, 'msg') else error}") from None
    if isinstance(data, dict) and isinstance(data.get("transactionResponse"), dict):
        data = data["transactionResponse"]  # tolerate a wrapped body
    if not isinstance(data, dict) or not data.get("externalTransactionId"):
        raise ValueError("postback body is not a transaction result with an externalTransactionId")
    return parse_transaction(data)
