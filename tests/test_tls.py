"""A `kds run` daemon's POS clients verify HTTPS as aiohttp would, though it imported aiohttp
without CA certificates (`kds.tls`): a real TLS server on 127.0.0.1, a CA of the test's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CLIENT = """
import asyncio, json, ssl, sys
from kds import tls
tls.import_aiohttp()  # as `kds run` does, with SSL_CERT_FILE naming the test's CA
import aiohttp
from aiohttp import web
from kds.sources.http import PosClient

async def main():
    app = web.Application()
    app.router.add_get("/orders", lambda request: web.json_response({"ok": True}))
    runner = web.AppRunner(app)
    await runner.setup()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(sys.argv[1], sys.argv[2])
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/orders"
    seen = {}
    async with aiohttp.ClientSession() as session:  # before any POS client started
        try:
            await session.get(url)
            seen["before"] = "verified"
        except aiohttp.ClientConnectorCertificateError:
            seen["before"] = "certificate refused"
    client = PosClient(timeout=5)
    await client.start()
    answer = await client.send("GET", url)
    seen["after"] = [answer.status, json.loads(answer.body)]
    await client.stop()
    await runner.cleanup()
    print(json.dumps(seen))

asyncio.run(main())
"""


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed (Debian: apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_a_pos_client_verifies_https_with_the_trust_of_the_environment(
    certificate: tuple[Path, Path],
) -> None:
    # aiohttp's default contexts hold no CA certificate until a POS client starts; then they
    # trust what SSL_CERT_FILE names, as aiohttp would have at import.
    cert, key = certificate
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, str(cert), str(key)],
        cwd=ROOT,
        env={**os.environ, "SSL_CERT_FILE": str(cert)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout)
    assert seen == {"before": "certificate refused", "after": [200, {"ok": True}]}
