"""The demo's readable report: rich tables, then where to look next."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from foundation.money import format_usd
from operations.reports import COLLECTED_LABEL, DEPOSITS_PAID_LABEL, RECEIVED_LABEL


def print_report(console: Console, summary: dict[str, Any], *, ui_url: str | None, namespace: str) -> None:
    activity = Table(title=f"{summary.get('months', 12)} months of health-plan billing", show_header=True, header_style="bold")
    activity.add_column("what")
    activity.add_column("count", justify="right")
    for key in (
        "subscriptions",
        "cycles_billed",
        "charges_approved",
        "charges_declined",
        "recovered_by_dunning",
        "suspended",
        "reactivated",
        "cancelled",
        "terminal_payments",
        "deposits",
        "refunds",
        "voids",
    ):
        activity.add_row(key.replace("_", " "), str(summary[key]))
    console.print(activity)

    money = Table(title="Money", show_header=True, header_style="bold")
    money.add_column("what")
    money.add_column("amount", justify="right")
    money.add_row("billed", format_usd(summary["billed_cents"]))
    money.add_row(COLLECTED_LABEL, format_usd(summary["collected_cents"]))
    money.add_row(DEPOSITS_PAID_LABEL, format_usd(summary["deposits_paid_cents"]))
    money.add_row(RECEIVED_LABEL, format_usd(summary["collected_cents"] + summary["deposits_paid_cents"]))
    money.add_row("refunded", format_usd(summary["refunded_cents"]))
    console.print(money)

    checks = Table(title="Checks", show_header=True, header_style="bold")
    checks.add_column("check")
    checks.add_column("result")
    checks.add_row("double charges (from the gateway's own list)", _ok(summary["double_charges"] == 0, str(summary["double_charges"])))
    checks.add_row("ledger balanced", _ok(summary["ledger_balanced"]))
    checks.add_row("our payments = the gateway's, to the cent", _ok(summary["reconciled_with_gateway"]))
    console.print(checks)
    for line in summary.get("reconciliation_mismatches", []):
        console.print(f"[red]mismatch[/red] {line}")
    console.print(f"Played in {summary['wall_seconds']} s of wall time.")
    console.print("\nWhere to look next:")
    if ui_url:
        console.print(f"  Temporal Web UI: {ui_url}/namespaces/{namespace}/workflows", soft_wrap=True)
    console.print("  Suspended subscriptions:  .venv/bin/temporal workflow list --query \"SubscriptionStatus = 'suspended'\"", soft_wrap=True)
    if summary.get("task_queue"):
        year = date.today().year
        console.print(
            f"  The demo's books: with `billing up` running, .venv/bin/billing --demo report --from {year}-01-01 --to {year + 3}-12-31"
            " (also statement, dunning, reconcile, show, history)",
            soft_wrap=True,
        )
        if ui_url:
            query = quote(f"TaskQueue = '{summary['task_queue']}'")
            console.print(
                f'  This run\'s workflows (the ones left open were terminated, "demo finished"): {ui_url}/namespaces/{namespace}/workflows?query={query}',
                soft_wrap=True,
            )
    console.print("  Run it again and explore: .venv/bin/billing demo --keep-running", soft_wrap=True)
    console.print("  Machine-readable:         .venv/bin/billing demo --json", soft_wrap=True)


def _ok(good: bool, text: str | None = None) -> str:
    shown = text if text is not None else ("yes" if good else "no")
    return f"[green]{shown}[/green]" if good else f"[bold red]{shown}[/bold red]"
