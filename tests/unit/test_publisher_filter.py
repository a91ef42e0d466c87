"""``--from`` without a server: items skipped (and why) when the service does not name the
publisher or names one not allowed, what the hook then shows, and how creation asks the service."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from hooknb.frontends import commands
from hooknb.xmpp import loop as _loop
from hooknb.xmpp.client import Client
from hooknb.errors import PubSubError
from hooknb.core.hooks import PUBLISHER_NAMED, PUBLISHER_PENDING, PUBLISHER_UNKNOWN, HookSpec
from unit.fakes import ACCOUNT, SERVICE, FakeClient, event, on_loop

from hooknb.core.nodes import publishers_named
from hooknb.frontends.runner import RunLog, Runner

BOB, CAROL = "bob@localhost", "carol@localhost"
ATOM_BY_BOB = ('<entry xmlns="http://www.w3.org/2005/Atom"><author><uri>xmpp:bob@localhost</uri>'
               '<name>bob@localhost</name></author><title>hi</title></entry>')


def install(host, node, publishers=(BOB,), **options):
    spec = HookSpec.make(ACCOUNT, SERVICE, node, "python_code", "item.id",
                         publishers=frozenset(publishers), **options)
    return host.engine.install(spec)


def feed(host, *events):
    on_loop(host.engine.accept, FakeClient(), list(events))


def journal(host):
    assert _loop.call(host.engine.idle(5))
    return [(r.item_id, r.status, r.error) for r in host.runs.snapshot()]


def test_an_item_without_publisher_is_skipped_journaled_and_the_hook_warns(host):
    hook = install(host, "n")
    assert (hook.publisher_check, hook.warnings) == (PUBLISHER_PENDING, [])
    feed(host, event("n", "a"), event("n", "b"))
    reason = f"--from: publisher unknown, {SERVICE} did not say who published the item"
    assert journal(host) == [("a", "skipped", reason), ("b", "skipped", reason)]
    assert (hook.skipped, hook.runs, hook.failures, hook.last_error) == (2, 0, 0, None)
    assert hook.publisher_check == PUBLISHER_UNKNOWN
    [warning] = hook.warnings
    assert "\n" not in warning and PUBLISHER_UNKNOWN in warning and SERVICE in warning
    assert PUBLISHER_UNKNOWN in repr(hook)
    summary = hook.summary()
    assert (summary["skipped"], summary["publisher_check"]) == (2, PUBLISHER_UNKNOWN)
    assert host.hooks_frame().loc[0, "skipped"] == 2


def test_an_item_from_a_publisher_not_allowed_is_skipped_with_its_own_reason(host):
    hook = install(host, "n")
    feed(host, event("n", "c1", publisher=f"{CAROL}/phone"), event("n", "b1", publisher=f"{BOB}/laptop"))
    assert journal(host) == [("c1", "skipped", f"--from: published by {CAROL}, not in the list"),
                             ("b1", "ok", None)]
    assert (hook.skipped, hook.runs, hook.publisher_check, hook.warnings) == (1, 1, PUBLISHER_NAMED, [])


def test_the_payload_author_never_counts_only_the_publisher_the_service_states(host):
    install(host, "n")
    feed(host, event("n", "forged", payload=ATOM_BY_BOB),
         event("n", "by-carol", publisher=CAROL, payload=ATOM_BY_BOB))
    assert [(i, s) for i, s, _ in journal(host)] == [("forged", "skipped"), ("by-carol", "skipped")]


def test_a_named_publisher_settles_it_later_items_without_one_are_still_skipped(host):
    hook = install(host, "n")
    feed(host, event("n", "live", publisher=BOB))
    assert host.wait_runs(1, 5)  # the run ends on its worker thread: journaled before the next
    feed(host, event("n", "fetched"))  # Prosody's PEP leaves the publisher out of fetched items
    assert [(i, s) for i, s, _ in journal(host)] == [("live", "ok"), ("fetched", "skipped")]
    assert (hook.publisher_check, hook.warnings) == (PUBLISHER_NAMED, [])


def test_retracts_never_name_who_made_them_and_say_nothing_of_publishers(host):
    hook = install(host, "n", kinds=frozenset({"retract"}))
    feed(host, event("n", "r", kind="retract"))
    assert journal(host) == [("r", "skipped", "--from: retract notifications do not say who made them")]
    assert hook.publisher_check == PUBLISHER_PENDING


def test_hooks_without_from_skip_nothing_and_show_no_publisher_check(host):
    hook = install(host, "n", publishers=())
    feed(host, event("n", "a"))
    assert journal(host) == [("a", "ok", None)]
    assert (hook.skipped, hook.publisher_check, hook.warnings) == (0, None, [])


def test_what_the_front_ends_print_after_creation(host):
    hook = install(host, "n")
    [note] = commands.notices(hook, "`hooknb run` logs it")
    assert note.startswith("note: ") and note.endswith("`hooknb run` logs it") and "\n" not in note
    host.engine.note_publishers(hook, False)
    assert commands.notices(hook, "later") == [f"warning: {hook.warnings[0]}"]
    host.engine.note_publishers(hook, True)
    assert commands.notices(hook, "later") == []
    assert commands.notices(install(host, "m", publishers=()), "later") == []


def test_the_runner_logs_a_hook_s_warning_once(host):
    hook = install(host, "n")
    out = io.StringIO()
    runner = Runner(host, ACCOUNT, log=RunLog("json", out))
    runner.known = {hook.id: hook}
    runner._log_warnings()
    feed(host, event("n", "a"), event("n", "b"))
    assert journal(host)
    runner._log_warnings()
    runner._log_warnings()
    [record] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (record["event"], record["hook"], record["error"]) == ("warning", hook.id, hook.warnings[0])


class Service:
    """What :meth:`Session.publishers_named` asks of a client: the newest item, the node's config."""

    def __init__(self, service: str, items: list, config: dict | Exception) -> None:
        self.service, self.items, self.config = service, items, config

    async def aget_items(self, node, service, max_items=None):
        return self.items[-max_items:]

    async def anode_field(self, node, var, service):
        if isinstance(self.config, Exception):
            raise self.config
        return self.config.get(var)

    is_pep = staticmethod(Client.is_pep)


FORBIDDEN = PubSubError("get node config refused: forbidden", "forbidden")
PEP = "bob@localhost"


@pytest.mark.parametrize(("service", "publisher", "config", "named"), [
    (SERVICE, BOB, FORBIDDEN, True),                                 # an item names its publisher
    (SERVICE, None, {}, False),                                      # Prosody, expose_publisher off
    (SERVICE, None, FORBIDDEN, False),                               # the same, not the owner
    (SERVICE, "none", {"pubsub#itemreply": "publisher"}, True),      # ejabberd, empty node
    (SERVICE, "none", {"pubsub#itemreply": "owner"}, False),
    (PEP, None, {"pubsub#itemreply": "none"}, False),                # ejabberd PEP
    (PEP, None, {}, None),                                           # Prosody PEP: fetched items never say
    (SERVICE, "none", FORBIDDEN, None),                              # empty, not the owner
])
def test_creation_asks_the_items_then_the_config(service, publisher, config, named):
    items = [] if publisher == "none" else [event("n", "i", service=service, publisher=publisher)]
    answer = asyncio.run(publishers_named(Service(service, items, config), service, "n"))
    assert answer is named
