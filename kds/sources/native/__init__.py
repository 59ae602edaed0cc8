"""The native source: orders posted to kds's own `POST /api/v1/orders` (`kds.api.orders`)."""
