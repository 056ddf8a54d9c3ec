"""One run's history events decoded into trail entries, payloads typed by the contracts they carry.

Why a class per workflow: a result names only the event that scheduled or accepted it, so the
decoder keeps what each run scheduled and accepted, and carries across runs which update or signal
asked for the next charge attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from pydantic_core import to_jsonable_python
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import decode_typed_search_attributes

from foundation.contracts import ChargeAsked, ChargeOutcome, ChargeRequest, CommandResult
from foundation.statuses import ChargeResult
from operations.history.activity_types import ACTIVITIES
from operations.history.entries import TEMPORAL, HistoryEntry
from operations.history.markers import LOCAL_ACTIVITY_MARKER
from operations.history.payload_types import SIGNALS, UPDATES, WORKFLOW_INPUTS, WORKFLOW_RESULTS
from operations.history.values import as_json, short
from stack.search_attributes import PAYMENT_STATUS, SUBSCRIPTION_STATUS

# Updates and signals after which the next charge attempt is theirs, not the dunning schedule's.
_CHARGE_TRIGGERS = ("change_card", "pay_now", "charging_enabled", "invoice_changed")


class RunDecoder:
    """Turns one run's events into entries; keeps per-run maps (scheduled activity, accepted update)."""

    def __init__(self, client: Client, workflow_id: str, workflow_type: str) -> None:
        self._converter = client.data_converter
        self._workflow_id = workflow_id
        self._type = workflow_type
        self._pending_trigger: str | None = None

    async def decode_run(self, run_id: str, events: Sequence[HistoryEvent]) -> list[HistoryEntry]:
        self._run_id = run_id
        self._scheduled: dict[int, tuple[str, Any, HistoryEntry]] = {}
        self._started_attempts: dict[int, int] = {}
        self._updates: dict[int, str] = {}
        entries: list[HistoryEntry] = []
        for event in events:
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                entries.extend(await self._local_activity(event))
                continue
            entry = await self._decode(event)
            if entry is not None:
                entries.append(entry)
        return entries

    def _entry(self, event: HistoryEvent, kind: str, summary: str, **values: Any) -> HistoryEntry:
        return HistoryEntry(
            at=event.event_time.ToDatetime(tzinfo=UTC),
            source=TEMPORAL,
            kind=kind,
            summary=summary,
            workflow_id=self._workflow_id,
            run_id=self._run_id,
            event_id=event.event_id,
            **values,
        )

    async def _values(self, payloads: Payloads, hints: Sequence[type | None] | None) -> list[Any]:
        if not payloads.payloads:
            return []
        if hints is not None and len(hints) == len(payloads.payloads) and all(h is not None for h in hints):
            try:
                return await self._converter.decode(payloads.payloads, list(hints))  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001 - an older contract shape: fall back to plain JSON
                pass
        return await self._converter.decode(payloads.payloads)

    async def _decode(self, event: HistoryEvent) -> HistoryEntry | None:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            values = await self._values(attrs.input, [WORKFLOW_INPUTS.get(self._type)])
            if attrs.continued_execution_run_id:
                return self._entry(
                    event, "run_continued", f"{self._type} run continues the previous one (continue-as-new)", trigger="continue-as-new", payload=as_json(values)
                )
            return self._entry(event, "workflow_started", f"{self._type} workflow started", trigger=_who(attrs.identity), payload=as_json(values))
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            name = attrs.activity_type.name
            hint = ACTIVITIES.get(name, (None, None))[0]
            values = await self._values(attrs.input, [hint])
            request = values[0] if values else None
            entry = self._scheduled_entry(event, name, request)
            self._scheduled[event.event_id] = (name, request, entry)
            return entry
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs = event.activity_task_started_event_attributes
            self._started_attempts[attrs.scheduled_event_id] = attrs.attempt
            return None
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs = event.activity_task_completed_event_attributes
            name, request, scheduled = self._scheduled.get(attrs.scheduled_event_id, ("?", None, None))
            values = await self._values(attrs.result, [ACTIVITIES.get(name, (None, None))[1]])
            tries = self._started_attempts.get(attrs.scheduled_event_id, 1)
            return self._completed_entry(event, name, request, values[0] if values else None, scheduled, tries)
        if kind in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT):
            failed = kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
            attrs = event.activity_task_failed_event_attributes if failed else event.activity_task_timed_out_event_attributes
            name, _, scheduled = self._scheduled.get(attrs.scheduled_event_id, ("?", None, None))
            return self._entry(
                event,
                "activity_failed",
                f"activity {name} {'failed' if failed else 'timed out'}: {attrs.failure.message}",
                status="failed",
                reason=attrs.failure.message,
                invoice_id=scheduled.invoice_id if scheduled else None,
            )
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            name = attrs.accepted_request.input.name
            self._updates[event.event_id] = name
            hints, _ = UPDATES.get(name, (None, None))
            args = await self._values(attrs.accepted_request.input.args, hints)
            who = _who(attrs.accepted_request.meta.identity)
            if name in _CHARGE_TRIGGERS:
                self._pending_trigger = f"update {name} by {who}"
            shown = ", ".join(short(a) for a in args)
            return self._entry(
                event, "update", f"update {name}({shown}) accepted", trigger=who, status="accepted", payload={"update": name, "args": as_json(args)}
            )
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attrs = event.workflow_execution_update_completed_event_attributes
            name = self._updates.get(attrs.accepted_event_id, "?")
            if attrs.outcome.HasField("failure"):
                return self._entry(
                    event, "update_result", f"update {name} failed: {attrs.outcome.failure.message}", status="failed", reason=attrs.outcome.failure.message
                )
            values = await self._values(attrs.outcome.success, [UPDATES.get(name, (None, CommandResult))[1]])
            result = values[0] if values else None
            message = getattr(result, "message", "") if result is not None else ""
            status = getattr(result, "status", None)
            return self._entry(event, "update_result", f"update {name} done: {message}".rstrip(": "), status=status, payload=as_json(result))
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = event.workflow_execution_signaled_event_attributes
            args = await self._values(attrs.input, SIGNALS.get(attrs.signal_name))
            if attrs.signal_name in _CHARGE_TRIGGERS:
                self._pending_trigger = f"signal {attrs.signal_name} from {_who(attrs.identity)}"
            first = args[0] if args else None
            return self._entry(
                event,
                "signal",
                f"signal {attrs.signal_name}({', '.join(short(a) for a in args)})",
                trigger=_who(attrs.identity),
                invoice_id=getattr(first, "invoice_id", None),
                status=getattr(first, "status", None) or getattr(first, "outcome", None),
                external_transaction_id=getattr(first, "external_transaction_id", None),
                payload=as_json(args),
            )
        if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            attrs = event.upsert_workflow_search_attributes_event_attributes
            typed = decode_typed_search_attributes(attrs.search_attributes)
            status = typed.get(SUBSCRIPTION_STATUS) or typed.get(PAYMENT_STATUS)
            if status is None:
                return None
            return self._entry(
                event, "status", f"status is now {status}", status=status, payload={pair.key.name: to_jsonable_python(pair.value) for pair in typed}
            )
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attrs = event.workflow_execution_continued_as_new_event_attributes
            return self._entry(
                event,
                "continued_as_new",
                f"run closed, continued as new run {attrs.new_execution_run_id}",
                trigger="cycle boundary",
                reference=attrs.new_execution_run_id,
            )
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            attrs = event.workflow_execution_completed_event_attributes
            values = await self._values(attrs.result, [WORKFLOW_RESULTS.get(self._type)])
            result = values[0] if values else None
            status = result if isinstance(result, str) else getattr(result, "status", None)
            return self._entry(
                event,
                "workflow_completed",
                f"{self._type} workflow completed: {short(result)}",
                status=status,
                invoice_id=getattr(result, "invoice_id", None),
                payment_id=getattr(result, "payment_id", None),
                payload=as_json(result),
            )
        if kind in (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        ):
            word = EventType.Name(kind).removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower()
            return self._entry(event, f"workflow_{word}", f"{self._type} workflow {word}", status=word)
        return None

    async def _local_activity(self, event: HistoryEvent) -> list[HistoryEntry]:
        """A local activity's marker: which activity, how many tries, and its result or failure, but
        not its input. The subscription charge echoes what it was asked in its outcome, so it reads
        as a request and a result like an activity task's. A local activity that returns nothing
        (the status mirror) is left out: its upserted status and outbox event already show."""
        attrs = event.marker_recorded_event_attributes
        if attrs.marker_name != LOCAL_ACTIVITY_MARKER or "data" not in attrs.details:
            return []
        data = (await self._values(attrs.details["data"], None) or [{}])[0]
        name = data.get("activity_type", "?") if isinstance(data, dict) else "?"
        result_type = ACTIVITIES.get(name, (None, None))[1]
        if result_type in (None, type(None)):  # unknown, or returns nothing (the status mirror)
            return []
        tries = int(data.get("attempt") or 1)
        if attrs.HasField("failure"):  # the charge's one local try; what follows is an activity task
            return [
                self._entry(event, "activity_failed", f"local activity {name} failed: {attrs.failure.message}", status="failed", reason=attrs.failure.message)
            ]
        values = await self._values(attrs.details["result"], [result_type]) if "result" in attrs.details else []
        result = values[0] if values else None
        asked = getattr(result, "asked", None)
        requested = self._scheduled_entry(event, name, asked) if isinstance(asked, ChargeAsked) else None
        completed = self._completed_entry(event, name, asked, result, requested, tries)
        return [requested, completed] if requested is not None else [completed]

    def _scheduled_entry(self, event: HistoryEvent, name: str, request: Any) -> HistoryEntry:
        if isinstance(request, (ChargeRequest, ChargeAsked)):
            trigger = "cycle due" if request.attempt <= 1 else "dunning retry"
            if request.attempt > 1 and self._pending_trigger:
                trigger = self._pending_trigger
            self._pending_trigger = None
            return self._entry(
                event,
                "charge_requested",
                f"charge cycle {request.cycle_index} ({request.period_start} to {request.period_end}), attempt {request.attempt}, card {request.card_id}",
                trigger=trigger,
                attempt=request.attempt,
                amount_cents=None,
                payload=as_json(request),
            )
        return self._entry(
            event,
            "activity",
            f"activity {name}({short(request)})",
            payload=as_json(request),
            invoice_id=getattr(request, "invoice_id", None),
            payment_id=getattr(request, "payment_id", None),
        )

    def _completed_entry(
        self,
        event: HistoryEvent,
        name: str,
        request: Any,
        result: Any,
        scheduled: HistoryEntry | None,
        tries: int,
    ) -> HistoryEntry:
        retried = f" after {tries} tries (transient faults retried with the same attempt id)" if tries > 1 else ""
        if isinstance(result, ChargeOutcome):
            if scheduled is not None:
                scheduled.invoice_id = result.invoice_id
            attempt = request.attempt if isinstance(request, (ChargeRequest, ChargeAsked)) else None
            if result.outcome == ChargeResult.PAID and result.charged_cents:
                what = f"approved {result.charged_cents} cents"
            elif result.outcome == ChargeResult.PAID:
                what = "paid without a charge (client credit or already paid)"
            elif result.outcome == ChargeResult.DECLINED:
                what = f"declined: {result.decline_reason} ({result.decline_class})"
            elif result.outcome == ChargeResult.NOT_CHARGED:
                what = f"not charged: {result.not_charged_reason}"
            else:
                what = f"{result.outcome}: {result.charged_cents} cents, {result.balance_cents} cents still open"
            return self._entry(
                event,
                "charge_result",
                f"charge attempt {attempt}: {what}{retried}",
                attempt=attempt,
                invoice_id=result.invoice_id,
                amount_cents=result.charged_cents,
                status=result.outcome,
                reason=result.decline_reason or result.not_charged_reason,
                external_transaction_id=result.external_transaction_id,
                payload=as_json(result),
            )
        return self._entry(
            event,
            "activity_result",
            f"activity {name} done: {short(result)}{retried}",
            payload=as_json(result),
            invoice_id=getattr(result, "invoice_id", None) or (scheduled.invoice_id if scheduled else None),
            payment_id=getattr(result, "payment_id", None),
            status=getattr(result, "status", None),
            amount_cents=getattr(result, "approved_cents", None) or getattr(result, "amount_cents", None),
        )


def _who(identity: str) -> str:
    return identity or "unknown client"
