"""What describes a local server: :class:`ServerInfo` (the ``server.json`` in its directory, the
JSON ``start`` prints), its names and ports, and its accounts' names and passwords."""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import HooknbError
from ..storage.trust import write_private

DOMAIN = "localhost"
PUBSUB = f"pubsub.{DOMAIN}"
#: Prosody only: a second PubSub component left as Prosody ships it (``expose_publisher = false``),
#: whose notifications and items never name the publisher (tests of ``--from`` use it).
PUBSUB_HIDDEN = f"pubsub-hidden.{DOMAIN}"
LOOPBACK = "127.0.0.1"
INFO_FILE = "server.json"
KINDS = ("prosody", "ejabberd")
#: The largest stanza a local server takes unless told otherwise (4 MiB).
STANZA_LIMIT = 4 << 20
#: How long a local server keeps a cut stream's session for its client to resume it (XEP-0198),
#: unless told otherwise: Prosody's ``smacks_hibernation_time``, ejabberd's ``resume_timeout``.
RESUME_WINDOW = 60


@dataclass
class ServerInfo:
    """What a client needs to reach a running local server (the JSON that ``start`` prints)."""

    host: str
    port: int
    domain: str
    pubsub: str
    accounts: dict[str, str]
    kind: str = "prosody"
    dir: str = ""
    pid: int = 0
    storage: str = "internal"
    cafile: str | None = None  # the CA that signed the server's certificate; None: no TLS
    direct_tls_port: int | None = None  # the direct TLS (XEP-0368) port; None: no TLS
    stanza_limit: int = STANZA_LIMIT  # the largest stanza a client may send, in bytes
    stream_limits: bool = False  # whether the server advertises stanza_limit (XEP-0478)
    resume_window: int = RESUME_WINDOW  # seconds a cut stream can be resumed (XEP-0198); 0: never
    extra: dict = field(default_factory=dict)  # not printed; ejabberd: its HTTP API port

    def jid(self, name: str) -> str:
        """The bare JID of account ``name``."""
        return f"{name}@{self.domain}"

    def public(self) -> dict:
        """The JSON object printed by ``start``."""
        return {k: v for k, v in asdict(self).items() if k != "extra"}


def free_port() -> int:
    """A TCP port that is free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def read_info(directory: str | os.PathLike) -> ServerInfo | None:
    """The description of the server living in ``directory``, or None if there is none."""
    path = Path(directory) / INFO_FILE
    if not path.exists():
        return None
    return ServerInfo(**json.loads(path.read_text()))


def save_info(info: ServerInfo) -> None:
    """Write ``server.json`` (it holds the accounts' passwords: 0600, whatever the umask)."""
    write_private(Path(info.dir) / INFO_FILE, json.dumps(asdict(info), indent=1))


def check_name(name: str) -> str:
    if not name.isalnum():
        raise HooknbError(f"account names must be letters and digits, got {name!r}")
    return name


def new_password() -> str:
    """A random password for a scratch account, never starting with ``-``: one that did (one in 64
    of ``token_urlsafe``) read as an option in ``--password PASSWORD``."""
    password = secrets.token_urlsafe(9)
    return password if not password.startswith("-") else "p" + password[1:]
