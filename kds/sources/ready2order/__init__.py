"""ready2order: table-order webhooks, a safety-net poll, 60 requests a minute.

`config`, `client` (rate-limited API calls), `webhook` (the route and what a
webhook body says), `source` (events, fetches, tickets, returns), `grouping`
(held items → tickets), `translate` (rows → kds order), `catalog` (products,
groups, tables), `bills` (what was paid), `cli` (`kds ready2order connect`).
"""
