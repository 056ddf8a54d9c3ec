"""Which contract each workflow, Update and signal payload is, so it decodes typed (unknown ones stay JSON)."""

from __future__ import annotations

from foundation.contracts import (
    CancelRequest,
    CardDepositRequest,
    CommandResult,
    DepositOutcome,
    GatewayResult,
    InvoiceCancellationInput,
    InvoiceCancellationOutcome,
    InvoiceChanged,
    JanitorInput,
    JanitorReport,
    PlanChange,
    ReconciliationInput,
    ReconciliationReport,
    RefundRequest,
    RefundResult,
    SubscriptionInput,
    TerminalOutcome,
    TerminalPaymentInput,
)

WORKFLOW_INPUTS: dict[str, type] = {
    "Subscription": SubscriptionInput,
    "TerminalPayment": TerminalPaymentInput,
    "InvoiceCancellation": InvoiceCancellationInput,
    "MoneyJanitor": JanitorInput,
    "DailyReconciliation": ReconciliationInput,
    "ChargingEnabled": str,
    "Refund": RefundRequest,
    "CardDeposit": CardDepositRequest,
}
WORKFLOW_RESULTS: dict[str, type] = {
    "Subscription": str,
    "TerminalPayment": TerminalOutcome,
    "InvoiceCancellation": InvoiceCancellationOutcome,
    "MoneyJanitor": JanitorReport,
    "DailyReconciliation": ReconciliationReport,
    "ChargingEnabled": int,
    "Refund": RefundResult,
    "CardDeposit": DepositOutcome,
}
UPDATES: dict[str, tuple[list[type], type]] = {
    "cancel": ([CancelRequest], CommandResult),
    "pause": ([], CommandResult),
    "resume": ([], CommandResult),
    "change_card": ([str], CommandResult),
    "change_plan": ([PlanChange], CommandResult),
    "pay_now": ([], CommandResult),
}
SIGNALS: dict[str, list[type]] = {"invoice_changed": [InvoiceChanged], "postback": [GatewayResult], "charging_enabled": []}
