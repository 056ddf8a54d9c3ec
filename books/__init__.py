"""The bookkeeping: invoices, attempts and the per-invoice arbiter, client credit, deposits,
refunds, voiding and ledger postings.

The only code that changes balances or posts to the ledger. Each function works inside the
caller's database transaction and is idempotent on a business key, so a retried activity finds its
own earlier work instead of doing it twice. Imports only `models` and `foundation` (the layer table
in the design): the activities call it, never the other way round.
"""
