"""Client TLS trust, loaded when a client first needs it rather than at every start (issue 19).

aiohttp builds its default client SSL contexts when it is imported, and each loads the
system's CA bundle: OpenSSL parses every certificate in it, ~0.25 G instructions a context,
a quarter of what a `kds run` start costs before the orders are loaded. A daemon whose
sources make no outgoing request (the native API, webhooks) never uses them.

`import_aiohttp()` (`kds run`, before the daemon is imported) imports aiohttp with OpenSSL's
CA file pointed at nothing and notes every client context aiohttp's modules made meanwhile
(found by type, so a renamed or moved context is not missed); `load_client_trust()` then
loads into them exactly what aiohttp would have loaded: the default verify paths, read from
the environment as it is then (`SSL_CERT_FILE` / `SSL_CERT_DIR` still decide what is
trusted). Every outgoing client calls it before its first request
(`kds.sources.http.PosClient.start`); after the first call it does nothing, and in a process
that imported aiohttp itself it never has anything to do. Should a context be missed, TLS
fails closed (no certificate verifies), never open.
"""

from __future__ import annotations

import os
import ssl
import sys

#: Where OpenSSL looks for the CA file while aiohttp is imported: no such file, no certificates.
_NO_CA_FILE = "/nonexistent/kds-ca-certificates-loaded-later"
#: aiohttp's import-time client contexts still without their CA certificates.
_deferred: list[ssl.SSLContext] = []


def import_aiohttp() -> None:
    """Import aiohttp without its client contexts loading CA certificates (if not imported)."""
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
    _deferred[:] = _contexts_of("aiohttp")


def _contexts_of(package: str) -> list[ssl.SSLContext]:
    """The SSL contexts held at module level by `package`'s imported modules."""
    found: dict[int, ssl.SSLContext] = {}
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == package:
            for value in vars(module).values():
                if isinstance(value, ssl.SSLContext):
                    found[id(value)] = value
    return list(found.values())


def load_client_trust() -> None:
    """Load the CA certificates aiohttp's default client contexts lack (what aiohttp loads at
    import); nothing when they have them."""
    while _deferred:
        _deferred.pop().set_default_verify_paths()
