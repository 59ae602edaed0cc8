"""PORTOS: polled orders, status write-back, token or NWS4 auth, optional signed webhooks.

`config` (the `[[sources]]` section), `client` (HTTP + auth), `auth` (tokens,
NWS4), `ndata` (its query syntax), `translate` (Order → kds order), `source`
(the poller), `writeback` (status → PORTOS route), `webhook` (signed pokes).
"""
