"""Every `[ours]` convention of the Gravity spec, in one place.

Gravity's public docs and SDK say nothing about these points, so the client and the sandbox share the
choices made here (see `/work/shared/gravity-emergepay.md`, the items marked [ours]). When Gravity's
certification team answers, this module is the only one that should need editing: the client maps
messages through these tables and the sandbox produces exactly these texts and shapes.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class DeclineReason(StrEnum):
    """Why a card was declined, as our dunning policy sees it."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    DO_NOT_HONOR = "do_not_honor"
    GENERIC = "generic"
    EXCEEDS_LIMIT = "exceeds_limit"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    CALL_ISSUER = "call_issuer"
    SUSPECTED_FRAUD = "suspected_fraud"
    EXPIRED_CARD = "expired_card"
    LOST_OR_STOLEN = "lost_or_stolen"
    INVALID_ACCOUNT = "invalid_account"
    CLOSED_ACCOUNT = "closed_account"
    RESTRICTED_CARD = "restricted_card"
    NOT_PERMITTED = "not_permitted"
    STOP_PAYMENT = "stop_payment"
    REVOKED = "revoked"
    SECURITY_VIOLATION = "security_violation"
    DO_NOT_TRY_AGAIN = "do_not_try_again"
    CANCELLED = "cancelled"  # the customer pressed cancel on a terminal [ours]


class DeclineClass(StrEnum):
    """What dunning does with a decline: soft = retry on schedule, hard = never reattempt this card
    (the issuer will never approve it: Visa's category 1, Mastercard's "do not try again") and ask
    for a new one."""

    SOFT = "soft"
    HARD = "hard"


# --- decline table (spec section 3) -----------------------------------------------------------
# resultMessage -> (reason, class). Gravity documents no decline code, so the client reads the
# processor's text. The first text of each reason is the one the sandbox writes; the others are the
# wordings US processors use for the same answer. Matching ignores case, punctuation and blanks, and
# a message containing a text matches it (processors prefix "DECLINED - " and the like); the longest
# text that matches wins, so "Do Not Try Again" is never read as the generic "Declined". [ours]
_SOFT, _HARD = DeclineClass.SOFT, DeclineClass.HARD
DECLINE_TEXTS: Final[tuple[tuple[str, DeclineReason, DeclineClass], ...]] = (
    ("Insufficient Funds", DeclineReason.INSUFFICIENT_FUNDS, _SOFT),
    ("Not Sufficient Funds", DeclineReason.INSUFFICIENT_FUNDS, _SOFT),
    ("NSF", DeclineReason.INSUFFICIENT_FUNDS, _SOFT),
    ("Do Not Honor", DeclineReason.DO_NOT_HONOR, _SOFT),
    ("Declined", DeclineReason.GENERIC, _SOFT),
    ("Exceeds Limit", DeclineReason.EXCEEDS_LIMIT, _SOFT),
    ("Exceeds Withdrawal Limit", DeclineReason.EXCEEDS_LIMIT, _SOFT),
    ("Exceeds Approval Amount Limit", DeclineReason.EXCEEDS_LIMIT, _SOFT),
    ("Over Credit Limit", DeclineReason.EXCEEDS_LIMIT, _SOFT),
    ("Activity Limit Exceeded", DeclineReason.EXCEEDS_LIMIT, _SOFT),
    ("Exceeds Withdrawal Frequency", DeclineReason.EXCEEDS_LIMIT, _SOFT),
    ("Issuer Unavailable", DeclineReason.ISSUER_UNAVAILABLE, _SOFT),
    ("Issuer or Switch Inoperative", DeclineReason.ISSUER_UNAVAILABLE, _SOFT),
    ("Try Again", DeclineReason.ISSUER_UNAVAILABLE, _SOFT),
    ("Call Issuer", DeclineReason.CALL_ISSUER, _SOFT),
    ("Refer to Card Issuer", DeclineReason.CALL_ISSUER, _SOFT),
    ("Call for Authorization", DeclineReason.CALL_ISSUER, _SOFT),
    ("Suspected Fraud", DeclineReason.SUSPECTED_FRAUD, _SOFT),
    ("Expired Card", DeclineReason.EXPIRED_CARD, _HARD),
    ("Card Expired", DeclineReason.EXPIRED_CARD, _HARD),
    ("Pick Up Card", DeclineReason.LOST_OR_STOLEN, _HARD),
    ("Lost Card", DeclineReason.LOST_OR_STOLEN, _HARD),
    ("Stolen Card", DeclineReason.LOST_OR_STOLEN, _HARD),
    ("Invalid Account", DeclineReason.INVALID_ACCOUNT, _HARD),
    ("Invalid Card Number", DeclineReason.INVALID_ACCOUNT, _HARD),
    ("No Such Account", DeclineReason.INVALID_ACCOUNT, _HARD),
    ("No Account", DeclineReason.INVALID_ACCOUNT, _HARD),
    ("Closed Account", DeclineReason.CLOSED_ACCOUNT, _HARD),
    ("Account Closed", DeclineReason.CLOSED_ACCOUNT, _HARD),
    ("Restricted Card", DeclineReason.RESTRICTED_CARD, _HARD),
    ("Transaction Not Permitted", DeclineReason.NOT_PERMITTED, _HARD),
    ("Invalid Transaction", DeclineReason.NOT_PERMITTED, _HARD),
    ("Stop Payment", DeclineReason.STOP_PAYMENT, _HARD),
    ("Revocation of Authorization", DeclineReason.REVOKED, _HARD),
    ("Revocation of All Authorizations", DeclineReason.REVOKED, _HARD),
    ("Security Violation", DeclineReason.SECURITY_VIOLATION, _HARD),
    ("Do Not Try Again", DeclineReason.DO_NOT_TRY_AGAIN, _HARD),
    # A customer cancel on the terminal ends the session with a declined result carrying this text,
    # so the engine learns of it by postback or lookup instead of polling for 30 minutes. [ours]
    ("Cancelled", DeclineReason.CANCELLED, _SOFT),
)


def _first_wordings() -> dict[str, tuple[DeclineReason, DeclineClass]]:
    table: dict[str, tuple[DeclineReason, DeclineClass]] = {}
    for text, reason, decline_class in DECLINE_TEXTS:
        if reason not in {r for r, _ in table.values()}:
            table[text] = (reason, decline_class)
    return table


# The exact texts, as a table (the first wording of each reason).
DECLINE_TABLE: Final[dict[str, tuple[DeclineReason, DeclineClass]]] = _first_wordings()
# The reverse direction, for the sandbox: reason -> resultMessage.
DECLINE_MESSAGE: Final[dict[DeclineReason, str]] = {reason: text for text, (reason, _) in DECLINE_TABLE.items()}
# A decline whose text matches nothing is a generic soft decline (its message kept, and reported).
UNKNOWN_DECLINE: Final[tuple[DeclineReason, DeclineClass]] = (DeclineReason.GENERIC, DeclineClass.SOFT)

APPROVED_MESSAGE: Final = "Approved"
PARTIAL_MESSAGE: Final = "Partially Approved"


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


_BY_LENGTH: Final = sorted(((f" {_words(t)} ", r, c) for t, r, c in DECLINE_TEXTS), key=lambda row: -len(row[0]))


def match_decline(result_message: str) -> tuple[DeclineReason, DeclineClass] | None:
    """(reason, class) of the longest table text the message contains, or None if none does."""
    wanted = f" {_words(result_message)} "
    for text, reason, decline_class in _BY_LENGTH:
        if text in wanted:
            return reason, decline_class
    return None


def classify_decline(result_message: str) -> tuple[DeclineReason, DeclineClass]:
    """Map a declined `resultMessage` to (reason, class); an unknown text is a generic soft decline."""
    return match_decline(result_message) or UNKNOWN_DECLINE


# --- 400 texts the sandbox answers and the client recognises ----------------------------------
# What the server does when an externalTransactionId is reused is undocumented; ours is a 400. [ours]
REUSED_EXTERNAL_ID_MESSAGE: Final = "externalTransactionId has already been used"
# Refunds above what is left of the sale are refused with a 400. [ours]
REFUND_EXCEEDS_REMAINING_MESSAGE: Final = "refund amount exceeds the remaining amount of the sale"
# A void on a settled sale is refused with a 400 (refund it instead). [ours]
VOID_AFTER_SETTLEMENT_MESSAGE: Final = "transaction is settled and can no longer be voided; refund it instead"
# Voiding something that was already voided, or a sale that has refunds. [ours]
ALREADY_VOIDED_MESSAGE: Final = "transaction has already been voided"
VOID_WITH_REFUNDS_MESSAGE: Final = "transaction has refunds and can no longer be voided; refund the rest instead"
# A uniqueTransId that is not an approved transaction of this OID (never a card token). [ours]
UNKNOWN_UNIQUE_TRANS_ID_MESSAGE: Final = "uniqueTransId not found"
# Terminal adapter 409s. [ours]
DEVICE_BUSY_MESSAGE: Final = "device is busy with another transaction"
DEVICE_OFFLINE_MESSAGE: Final = "device is offline"
TERMINAL_ALREADY_COMPLETED_MESSAGE: Final = "transaction already completed on the device"
# 404 texts: an OID the server does not know vs a transaction it does not (yet) know. The client
# must tell them apart, or a wrong OID would look like "never charged" to the safe path. [ours]
UNKNOWN_OID_MESSAGE: Final = "organization not found"
TRANSACTION_NOT_FOUND_MESSAGE: Final = "transaction not found"
UNKNOWN_DEVICE_MESSAGE: Final = "device not found"
TERMINAL_SESSION_NOT_FOUND_MESSAGE: Final = "no such transaction on this device"
IDEMPOTENCY_CONFLICT_MESSAGE: Final = "idempotency-key was used with a different request body"
IDEMPOTENCY_IN_PROGRESS_MESSAGE: Final = "a request with this idempotency-key is still in progress"


def is_message(actual: str | None, convention: str) -> bool:
    """True when a server `message` is the given convention text (case-insensitive prefix match)."""
    if not actual:
        return False
    return actual.strip().casefold().startswith(convention.casefold())


# --- more than was asked, AVS, CVV, cashier (spec section 3) ------------------------------------
# A terminal approval may take more than the request: a tip the customer adds on the device
# (`amountTipped`) and a card surcharge (`amountTaxed`). `amountProcessed` is then the amount plus
# both. The field names are those of emergepay's transaction result, but our spec does not list them
# yet; reading `amountTaxed` as the surcharge, and `amountProcessed` as including both, is ours. [ours]
# A `cashierId` sent with a sale comes back in the result as `cashier` (same caveat). [ours]
# AVS and CVV: the sandbox checks them only where a card is keyed (`tokenize`), and only what was
# sent: a billing postal code gives an AVS result, a security code a CVV result; anything not checked
# (a card-on-file charge, a tap at a terminal) comes back as "". The codes are the card networks'
# usual letters; which ones the sandbox gives, and the test values that mismatch, are ours. [ours]
AVS_RESPONSES: Final[dict[str, str]] = {
    "Y": "Address and 5-digit ZIP match",
    "N": "Neither address nor ZIP match",
}
CVV_RESPONSES: Final[dict[str, str]] = {
    "M": "Match",
    "N": "No match",
}
# These values are checked as mismatches; the card is still approved (the merchant decides). [ours]
NO_MATCH_POSTAL_CODE: Final = "00000"
NO_MATCH_SECURITY_CODE: Final = "000"


def avs_code(postal_code: str | None) -> str:
    """The sandbox's avsResponseCode for a keyed card's billing postal code ("" when none was sent)."""
    if not postal_code:
        return ""
    return "N" if postal_code == NO_MATCH_POSTAL_CODE else "Y"


def cvv_code(security_code: str | None) -> str:
    """The sandbox's cvvResponseCode for a keyed card's security code ("" when none was sent)."""
    if not security_code:
        return ""
    return "N" if security_code == NO_MATCH_SECURITY_CODE else "M"


# --- voids, settlement, idempotency ------------------------------------------------------------
VOID_WINDOW_SECONDS: Final = 25 * 60  # Gravity's gateway: a void later than this becomes a refund [doc]
IDEMPOTENCY_TTL_SECONDS: Final = 24 * 3600  # [doc]
BULK_MAX_REQUESTS: Final = 1000  # [doc]
BULK_ACCEPTED_STATUS: Final = 202  # bulk answers 202 {"accepted": n}; results come by postback [ours]

# --- postbacks (spec section 4) ---------------------------------------------------------------
POSTBACK_SIGNATURE_HEADER: Final = "hmac-signature"  # [seen]
POSTBACK_MAX_ATTEMPTS: Final = 8  # the sandbox gives up after this many tries [ours]
POSTBACK_BACKOFF_BASE_SECONDS: Final = 1.0  # delay before retry n is base * 2**(n-1), capped [ours]
POSTBACK_BACKOFF_CAP_SECONDS: Final = 60.0  # [ours]

# --- terminal adapter (spec section 5, all [ours]) ---------------------------------------------
# POST   {base}/orgs/{oid}/devices/{device}/transactions          -> 202
# DELETE {base}/orgs/{oid}/devices/{device}/transactions/{extId}  -> 200 cancelled | 409 completed
# GET    {base}/orgs/{oid}/devices                                -> 200 {"devices": [...]}
TERMINAL_START_PATH: Final = "/orgs/{oid}/devices/{device}/transactions"
TERMINAL_CANCEL_PATH: Final = "/orgs/{oid}/devices/{device}/transactions/{external_id}"
DEVICES_PATH: Final = "/orgs/{oid}/devices"
TERMINAL_START_STATUS: Final = 202
# Each item of GET devices: {"deviceName": str, "online": bool, "busy": bool}
DEFAULT_SANDBOX_DEVICES: Final = ("front-desk-1", "front-desk-2")
TERMINAL_TRANSACTION_TYPES: Final = ("CreditSale", "CreditReturn")
DEFAULT_TERMINAL_ENTRY_METHOD: Final = "Contactless"

# --- the sandbox's test cards (spec section 6) -------------------------------------------------
APPROVED_VISA: Final = "4111111111111111"
APPROVED_MASTERCARD: Final = "5555555555554444"
# number -> resultMessage for `tokenize` and terminal taps ("Approved" = approves).
TEST_CARDS: Final[dict[str, str]] = {
    APPROVED_VISA: APPROVED_MESSAGE,
    APPROVED_MASTERCARD: APPROVED_MESSAGE,
    "4000000000009995": DECLINE_MESSAGE[DeclineReason.INSUFFICIENT_FUNDS],
    "4000000000000002": DECLINE_MESSAGE[DeclineReason.DO_NOT_HONOR],
    "4000000000000069": DECLINE_MESSAGE[DeclineReason.EXPIRED_CARD],
    "4000000000000119": DECLINE_MESSAGE[DeclineReason.LOST_OR_STOLEN],
}
# Saves (and taps) fine, but every later charge of the saved card declines with this text.
DECLINES_AFTER_SAVE_CARD: Final = "4000000000000341"
DECLINES_AFTER_SAVE_MESSAGE: Final = DECLINE_MESSAGE[DeclineReason.GENERIC]
# Any other number approves if it passes the Luhn check and has a known brand prefix; a Luhn failure
# or an unknown brand is declined "Invalid Account"; an expiry in the past "Expired Card". [ours]


def card_brand(number: str) -> str | None:
    """Gravity's `accountCardType` for a card number (VS, MC, AX, DS), None when unknown."""
    if number.startswith("4"):
        return "VS"
    if re.match(r"^(5[1-5]|2(2[2-9][1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720))", number):
        return "MC"
    if re.match(r"^3[47]", number):
        return "AX"
    if re.match(r"^(6011|65|64[4-9])", number):
        return "DS"
    return None


def luhn_ok(number: str) -> bool:
    """The Luhn check digit test every real card number passes."""
    if not (number.isascii() and number.isdigit()) or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def mask_card(number: str) -> str:
    """`maskedAccount` as Gravity shows it: all but the last four digits as `*`."""
    return "*" * (len(number) - 4) + number[-4:]


# --- sandbox fault injection: endpoint names used by /_sandbox/faults ---------------------------
FAULT_ENDPOINTS: Final = (
    "tokenizedPayment",
    "tokenizedRefund",
    "void",
    "lookup",
    "tokenize",
    "bulk",
    "deviceStart",
    "deviceCancel",
    "devices",
)
FAULT_KINDS: Final = ("500", "429", "slow", "lost", "404", "amountless")
# "amountless" answers as usual but with every amount field empty: an approval that states no
# amount, which the books must still take as what was asked. [ours]
AMOUNT_FIELDS: Final = ("amount", "amountProcessed", "amountBalance", "amountTipped", "amountTaxed")
# "404" answers "transaction not found" although the transaction exists: a lookup index that lags
# behind the write. Only the lookup endpoint takes it. [ours]
NOT_FOUND_FAULT_ENDPOINTS: Final = ("lookup",)
DEFAULT_SLOW_SECONDS: Final = 30.0
RATE_LIMIT_RETRY_AFTER_SECONDS: Final = 1  # the sandbox's Retry-After on an injected 429 [ours]

# --- client's safe path for unknown outcomes ---------------------------------------------------
SAFE_LOOKUP_ATTEMPTS: Final = 5
SAFE_LOOKUP_BACKOFF_SECONDS: Final = 0.25  # doubled after each miss
