"""Helpers of the crash suite: a load client that keeps a ledger, and the checks."""
