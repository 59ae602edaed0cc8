"""The cheques API: polled open cheques, each diffed against what the kitchen already has.

`config`, `client` (intent-header calls, PIN auth), `translate` (answer → lines
and keys), `source` (the poller and the diff that makes orders and VOIDs).
"""
