"""A throwaway local XMPP server (Prosody by default, ejabberd on request) on a loopback port.

The server lives in a directory of its own: its configuration, data, log and a ``server.json``
describing it (host, port, domain, PubSub component JID, accounts and passwords, pid, CA file).
It is the embedded default of hooknb: the demo, the notebooks and the test suite all start one.

It speaks TLS: a private CA and a certificate for ``localhost`` (and ``pubsub.localhost``) are
made on the first start and kept in the directory (``ca.pem``, ``cert.pem``, ``cert.key``; the
key is readable by its owner only; files already there are used as they are).  The client port
requires STARTTLS and a second port offers direct TLS (XEP-0368); clients trust ``cafile``.
``tls=False`` (``--plaintext``) starts a server without TLS, for tests of plaintext itself.

Stanzas may take up to ``stanza_limit`` bytes (4 MiB unless told: Prosody's
``c2s_stanza_size_limit``, ejabberd's ``max_stanza_size``).  Prosody 0.12 does not tell clients
its limit; ``stream_limits=True`` adds a small module that advertises it in the stream features
(XEP-0478), as Prosody 13 does.

Stream management (XEP-0198) is on: a cut stream's session is kept ``resume_window`` seconds
(60 unless told) for its client to resume it; with 0, streams are never resumed (Prosody then
offers no stream management, ejabberd offers it without resumption).

From the shell::

    python -m hooknb.server start --dir DIR [--accounts alice,bob] [--kind prosody|ejabberd]
                                  [--plaintext] [--stanza-limit BYTES] [--stream-limits]
                                  [--resume-window SECONDS]
    python -m hooknb.server stop --dir DIR

``start`` prints one JSON object and leaves the server running in the background.
"""

from .certs import CA_FILE, CERT_FILE, KEY_FILE
from .cli import main
from .info import (DOMAIN, INFO_FILE, KINDS, LOOPBACK, PUBSUB, PUBSUB_HIDDEN, RESUME_WINDOW, STANZA_LIMIT,
                   ServerInfo, free_port, new_password, read_info)
from .lifecycle import add_account, start, stop
from .processes import is_running

__all__ = ["CA_FILE", "CERT_FILE", "DOMAIN", "INFO_FILE", "KEY_FILE", "KINDS", "LOOPBACK", "PUBSUB",
           "PUBSUB_HIDDEN", "RESUME_WINDOW", "STANZA_LIMIT", "ServerInfo", "add_account", "free_port",
           "is_running", "main", "new_password", "read_info", "start", "stop"]
