"""The custom search attributes the engine registers on Temporal, declared once.

Why here: the workflows upsert them (so finance can list workflows by client, location, plan and
status in the Web UI or `temporal workflow list --query`), and the embedded dev server must register
the very same names and types at start (`--search-attribute NAME=TYPE`). Keeping both views in one
table means they can never drift apart.

Workflow code imports this module, so it imports nothing but `temporalio.common`: no subprocess,
no psutil, no database.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CLIENT_ID = SearchAttributeKey.for_keyword("ClientId")
LOCATION_ID = SearchAttributeKey.for_keyword("LocationId")
PLAN_ID = SearchAttributeKey.for_keyword("PlanId")
SUBSCRIPTION_STATUS = SearchAttributeKey.for_keyword("SubscriptionStatus")
NEXT_DUE_AT = SearchAttributeKey.for_datetime("NextDueAt")
INVOICE_ID = SearchAttributeKey.for_keyword("InvoiceId")
PAYMENT_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (
    CLIENT_ID,
    LOCATION_ID,
    PLAN_ID,
    SUBSCRIPTION_STATUS,
    NEXT_DUE_AT,
    INVOICE_ID,
    PAYMENT_STATUS,
)

# The CLI spells the types in CamelCase ("Keyword", "Datetime"); the SDK enum says KEYWORD, DATETIME.
_CLI_TYPE_NAMES = {
    "TEXT": "Text",
    "KEYWORD": "Keyword",
    "INT": "Int",
    "DOUBLE": "Double",
    "BOOL": "Bool",
    "DATETIME": "Datetime",
    "KEYWORD_LIST": "KeywordList",
}


def cli_type_name(key: SearchAttributeKey) -> str:
    """The type as `temporal server start-dev --search-attribute NAME=TYPE` wants it."""
    return _CLI_TYPE_NAMES[key.indexed_value_type.name]


# ("ClientId=Keyword", ...): one value per `--search-attribute` flag.
CLI_VALUES: tuple[str, ...] = tuple(f"{key.name}={cli_type_name(key)}" for key in ALL_KEYS)
