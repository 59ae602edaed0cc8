"""Pacing: when an order's items reach their stations and leave them.

`plan` decides, purely, which items are held back (a scheduled order before its
window, a later course before it is fired, a quick dish waiting for a slow one)
and what is due when; `timers.KitchenTimers` watches the clock and asks the
service to release, fire or auto-bump — only the service changes order state.
"""
