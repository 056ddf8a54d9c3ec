"""Gravity Payments emergepay: the client (`client`), typed results, errors by kind, postback
signatures, the `[ours]` conventions in one module, and a faithful local sandbox (`sandbox/`).

Nothing is imported here, so workflow code may import `gravity.results` or `gravity.conventions`
without pulling in httpx.
"""
