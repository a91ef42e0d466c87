"""``make demo``: a local server, two accounts, a hook, a few publishes, the hook's code, the
events and the hook's runs as tables.

Run with ``python -m hooknb.frontends.demo``.  Everything happens on loopback in a temporary directory,
which is removed at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time

from .. import server as srv
from ..host import Host

NODE = "demo-news"
#: Alice's hook: a python_code hook whose result is the item's title, upper-cased.
CODE = "item.xml.findtext('{urn:demo}title', '').upper()"


def main() -> int:
    """Run the demo and print what alice received and what her hook did."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hooknb-demo-") as directory:
        info = srv.start(directory, ["alice", "bob"])
        print(f"local Prosody on {info.host}:{info.port}, STARTTLS with its own CA {info.cafile} "
              f"(PubSub service {info.pubsub})")
        try:
            alice_host, bob_host = Host(store_path=f"{directory}/alice.sqlite3"), Host(
                store_path=f"{directory}/bob.sqlite3")
            options = {"host": info.host, "port": info.port, "cafile": info.cafile}  # STARTTLS
            alice = alice_host.connect(info.jid("alice"), info.accounts["alice"], **options)
            bob = bob_host.connect(info.jid("bob"), info.accounts["bob"], **options)
            alice.create_node(NODE, info.pubsub)
            hook = alice_host.create_hook(NODE, CODE, type="python_code", service=info.pubsub)
            titles = ["hello", "hooks in notebooks", "third item"]
            for i, title in enumerate(titles, 1):
                bob.publish(NODE, f"<entry xmlns='urn:demo'><title>{title}</title></entry>",
                            item_id=f"item-{i}", service=info.pubsub)
            bob.retract(NODE, "item-1", service=info.pubsub)
            alice_host.wait_runs(len(titles), 10)
            alice_host.wait_events(len(titles) + 1, 10)
            print("\nEvents alice received:")
            print(alice_host.events_frame()[["received", "service", "node", "kind", "item_id",
                                              "publisher", "payload"]].to_string(index=False))
            print(f"\nAlice's hook {hook.id}, python_code on node {NODE} of {info.pubsub} (its last "
                  f"expression is the run's result):\n    {CODE}")
            print("\nRuns of alice's hook (result: the title, upper-cased by the code above):")
            print(alice_host.runs_frame()[["start", "node", "kind", "item_id", "status", "result"]]
                  .to_string(index=False))
            alice_host.disconnect()
            bob_host.disconnect()
        finally:
            srv.stop(directory)
    print(f"\ndemo done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
