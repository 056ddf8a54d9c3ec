"""The audit trail finance reads: what Temporal recorded and what our books hold, side by side.

Why two sources: the workflow history says *why* something happened (a cycle fell due, a dunning
retry, an operator's update with its arguments, a postback signal, a continue-as-new), the database
says what it did to the money (payments, refunds, deposits, ledger transactions, outbox events).
An auditor needs both, in one time-ordered list, and must be able to check one against the other:
every approved charge the workflow reports carries the `externalTransactionId` of the payment row
and ledger transaction that booked it.

The workflow side follows the whole continue-as-new chain of each workflow (a subscription's run
continues as new at a cycle boundary once it has billed about a year of cycles, or sooner when the
server suggests it; runs recorded before that change continued after every cycle): the newest run is
read first and the chain is walked back through each run's `continued_execution_run_id`, which is
exact even while the visibility store (what `list_workflows` reads) lags behind. Payloads are decoded
with the client's data converter (the pydantic one every part of the engine shares), typed where the
contract is known.

Subjects: a subscription (its workflow, invoices and everything on them), an invoice (its own rows,
the subscription events about it, its terminal payments and cancellation saga) or a client
(everything of theirs).

The modules, one concern each:
- `trail`: `audit_trail`, the entry point, and the `AuditTrail` it returns;
- `scope`: which invoices, payments, streams and workflows belong to the subject;
- `books`: the database's rows as entries;
- `workflow_runs`: a workflow's continue-as-new chain read from Temporal;
- `decoding`: one run's history events decoded into entries, typed by `payload_types` and
  `activity_types`; `markers` names the markers the SDK core leaves in a history;
- `timeline`: both records merged into one list ordered by time;
- `entries`: the entry and workflow records; `export`: the CSV and JSON shapes;
- `values`: the small conversions the readers share.
"""
