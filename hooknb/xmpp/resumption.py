"""Stream management (XEP-0198) for a :class:`~hooknb.xmpp.client.Client`: acks, and resumption
of a cut stream.

Where the server offers it, slixmpp's ``xep_0198`` plugin enables stream management with
resumption after binding, and on a reconnection asks the server to resume the stream before
binding again.  A resumed stream keeps its session: presence, subscriptions and the stanzas the
server queued while the client was away, which the server sends again, in order, right after
``<resumed/>``; slixmpp sends again the stanzas of ours the server had not acknowledged (a
publish in flight at the cut is answered once, on the resumed stream); the client's stream sends
there too the stanzas handed to slixmpp as the cut happened, which were never written
(:meth:`~hooknb.xmpp.stream.Stream._hold_unwritable`).  A refused resumption
(the window passed, or the server keeps none) falls back to a new session, which the client
catches up as after any reconnection.

Two things hooknb adds to the plugin:

* **Counting what is taken.**  The client takes PubSub notifications as XML before slixmpp
  builds stanzas of them (:class:`~hooknb.xmpp.stream.Stream`), so the plugin's count of the
  stanzas handled never sees them: the server would believe them unread and send them again on
  resumption (duplicates), and its acks would go wrong.  :func:`count_taken` counts each one.
* **Measuring the replay.**  Prosody and ejabberd both send ``<resumed/>``, then the queued
  stanzas, then an ack request ``<r/>``: the stanzas counted in between are those the server
  replayed (:attr:`Resumption.replayed`).  A stream cut again before that ``<r/>`` ends the
  replay at the cut: the resumption is counted with what was replayed until then.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import slixmpp

log = logging.getLogger(__name__)

MAX_SEQ = 2 ** 32  # XEP-0198 counters wrap at 2^32
#: Stanzas sent between two ack requests of ours: a publish unacked at a cut is sent again on
#: resumption, so this bounds what is kept for that, not what is safe.  Each request costs the
#: server an answer and us a stanza to read: at 5, a start with 10,000 nodes read 4,000 of them.
ACK_WINDOW = 32


def enable(xmpp: slixmpp.ClientXMPP) -> None:
    """Register stream management on ``xmpp`` (before it connects)."""
    xmpp.register_plugin("xep_0198", {"window": ACK_WINDOW})


def count_taken(xmpp: slixmpp.ClientXMPP, taken: int = 1) -> None:
    """Count ``taken`` stanzas taken before slixmpp built them (notifications, answers) as
    handled: the plugin's own counter (``handled``, an ``in`` filter) sees only stanza objects."""
    plugin = xmpp.plugin["xep_0198"]
    if plugin.enabled_in:
        plugin.handled = (plugin.handled + taken) % MAX_SEQ


def resumable(xmpp: slixmpp.ClientXMPP | None) -> bool:
    """Whether ``xmpp``'s stream, if cut now, can be asked to resume (the server gave it an id)."""
    if xmpp is None or "xep_0198" not in xmpp.plugin:
        return False
    plugin = xmpp.plugin["xep_0198"]
    return bool(plugin.sm_id) and plugin.allow_resume


class Resumption:
    """What resumptions an account's streams went through: counted on the loop thread, read from
    any (status rows, the runner's log).  A resumption is counted in :attr:`resumed` once the
    server has replayed what it queued."""

    def __init__(self) -> None:
        self.resumed = 0  # streams resumed
        self.refused = 0  # resumptions the server refused (a new session followed)
        self.replayed = 0  # stanzas the server sent again at the latest resumption
        self.replayed_total = 0
        self.refusal: str | None = None  # why the latest resumption was refused, until taken
        self._mark: int | None = None  # the handled count at <resumed/>, until the server's <r/>
        self._xmpp: slixmpp.ClientXMPP | None = None

    def watch(self, xmpp: slixmpp.ClientXMPP) -> None:
        """Follow ``xmpp``'s resumptions (before it connects)."""
        xmpp.add_event_handler("session_resumed", self._on_resumed)
        xmpp.add_event_handler("sm_failed", self._on_failed)
        # A cut before the server's <r/> (ejabberd sends it apart from <resumed/>) ends the
        # replay too: else the next <resumed/> took its mark, and this resumption went uncounted.
        xmpp.add_event_handler("disconnected", lambda _reason: self._end_replay(xmpp))
        # The server's ack requests are taken by the stream (Stream.on_ack_request), which
        # answers them; the first one after <resumed/> ends the replay.
        xmpp.remove_handler("Stream Management Request Ack")
        xmpp.on_ack_request = lambda: self._end_replay(xmpp)
        self._xmpp = xmpp

    def take_refusal(self) -> str | None:
        """Why the resumption just attempted was refused (the server's condition), once."""
        refusal, self.refusal = self.refusal, None
        return refusal

    def _on_resumed(self, _stanza: Any) -> None:
        # a sync handler: slixmpp runs it at once, before the next stanza read is handled
        self._mark = self._xmpp.plugin["xep_0198"].handled

    def _end_replay(self, xmpp: slixmpp.ClientXMPP) -> None:
        if self._mark is None:
            return
        self.replayed = (xmpp.plugin["xep_0198"].handled - self._mark) % MAX_SEQ
        self.replayed_total += self.replayed
        self.resumed += 1
        self._mark = None
        log.info("%s: stream resumed, %d stanzas replayed by the server", xmpp.boundjid.bare, self.replayed)

    def _on_failed(self, stanza: Any) -> None:
        if not self._xmpp.plugin["xep_0198"].sm_id:  # enabling failed, not resuming
            return
        self.refused += 1
        self.refusal = next((child.tag.split("}")[-1] for child in stanza.xml), None) or "refused"
        log.info("%s: the server refused to resume the stream (%s): new session", self._xmpp.boundjid.bare,
                 self.refusal)
