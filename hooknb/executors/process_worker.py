"""What runs inside a worker process of the ``process`` executor: load a hook's code, run it on items.

Started by :mod:`hooknb.executors.process_lane` (``forkserver``: a fresh interpreter, never a fork
of the kernel's threads), it imports only the remote contract (:mod:`hooknb.executors.remote`),
never the lanes, the store, the engine or the client.  It answers messages on its pipe, one at a
time, until the pipe closes: ``("load", Code)`` compiles a hook's code once per digest;
``("call", key, event)`` runs it on one item and sends the :class:`~hooknb.executors.remote.Reply`
back.  With a memory limit, an allocation past it raises ``MemoryError`` in the hook (an error
outcome) instead of growing until the system kills something.
"""

from __future__ import annotations

import resource
from multiprocessing.connection import Connection

from . import remote


def serve(conn: Connection, name: str, memory: int | None = None) -> None:
    """Answer ``conn``'s messages (see the module docstring) as worker ``name``; ``memory``: the
    address space allowed, in bytes (None: no limit)."""
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "load":
            remote.load(message[1])
        else:
            conn.send(remote.call(message[1], message[2], name))
