"""Client TLS trust, loaded when a client first needs it rather than at every start (issue 19).

aiohttp builds its two default client SSL contexts when it is imported, and each loads the
system's CA bundle: OpenSSL parses every certificate in it, ~0.25 G instructions a context,
a quarter of what a `kds run` start costs before the orders are loaded. A daemon whose
sources make no outgoing request (the native API, webhooks) never uses them.

`import_aiohttp()` (`kds run`, before the daemon is imported) imports aiohttp with OpenSSL's
CA file pointed at nothing; `load_client_trust()` then loads into both contexts exactly what
aiohttp would have loaded: their default verify paths, read from the environment as it is
then (`SSL_CERT_FILE` / `SSL_CERT_DIR` still decide what is trusted). Every outgoing client
calls it before its first request (`kds.sources.http.PosClient.start`); after the first call
it does nothing, and in a process that imported aiohttp itself it never has anything to do.
"""

from __future__ import annotations

import os
import sys

#: Where OpenSSL looks for the CA file while aiohttp is imported: no such file, no certificates.
_NO_CA_FILE = "/nonexistent/kds-ca-certificates-loaded-later"
#: Whether aiohttp's default client contexts still lack the CA certificates.
_deferred = False


def import_aiohttp() -> None:
    """Import aiohttp without its client contexts loading CA certificates (if not imported)."""
    global _deferred
    if "aiohttp" in sys.modules:
        return
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = _NO_CA_FILE
    try:
        import aiohttp  # noqa: F401
    finally:
        if saved is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = saved
    _deferred = True


def load_client_trust() -> None:
    """Load the CA certificates aiohttp's default client contexts lack (what aiohttp loads at
    import); nothing when they have them."""
    global _deferred
    if not _deferred:
        return
    from aiohttp import connector

    # aiohttp's import-time contexts: the one TLS requests verify with, and ssl=False's.
    for context in (connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED):
        context.set_default_verify_paths()
    _deferred = False
