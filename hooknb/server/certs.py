"""The local server's TLS files: a private CA and a certificate for the domain and its PubSub
component, made with trustme on the first start and kept in the server's directory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import trustme

from ..storage.trust import write_private
from .info import DOMAIN, PUBSUB

#: The certificate files in a server's directory: the CA clients trust, the server's certificate
#: (with its chain) and its private key.
CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "cert.pem", "cert.key"
CERT_LIFETIME = timedelta(days=3650)


def certificates(d: Path) -> str:
    """The CA file of the server in ``d``.  On first use a CA is made and signs a certificate for
    the domain and the PubSub component; later starts keep the files as they are."""
    ca_file, cert_file, key_file = d / CA_FILE, d / CERT_FILE, d / KEY_FILE
    if not (ca_file.exists() and cert_file.exists() and key_file.exists()):
        ca = trustme.CA(organization_name="hooknb local server")
        # ten years: ejabberd 23.01 crashes on the timer of trustme's default (the year 3000)
        leaf = ca.issue_cert(DOMAIN, PUBSUB, not_after=datetime.now(timezone.utc) + CERT_LIFETIME)
        write_private(key_file, leaf.private_key_pem.bytes().decode())
        cert_file.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        ca_file.write_bytes(ca.cert_pem.bytes())
    return str(ca_file)
