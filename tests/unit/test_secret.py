"""A password held as a :class:`~hooknb.xmpp.secret.Secret` shows in no repr, str, format, log
line or pickle, and frames that take a password hold the Secret, whatever the caller passed;
slixmpp's credentials reveal it only to the reader (SASL)."""

from __future__ import annotations

import logging
import pickle
import pytest

from hooknb.xmpp import loop
from hooknb.xmpp.secret import MASK, Credentials, Secret, hide, hider

PASSWORD = "s3cret-Pa55"


def test_a_secret_never_shows(caplog):
    secret = Secret(PASSWORD)
    shown = [repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s %r" % (secret, secret),
             repr([secret]), repr({"password": secret})]
    assert not [s for s in shown if PASSWORD in s] and MASK in str(secret)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("t").debug("connecting with %s (%r)", secret, secret)
    assert PASSWORD not in caplog.text
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(AttributeError):
        secret._value = "other"
    assert secret.reveal() == PASSWORD and secret == Secret(PASSWORD) and secret != PASSWORD
    assert hide(secret) is secret and hide(None) is None and hide(PASSWORD) == secret
    assert not Secret("")


def test_frames_that_take_a_password_hold_the_secret():
    """What ``%xmode Verbose`` prints: every frame's locals, of the traceback of a failed call."""

    async def aconnect(self, jid, password, timeout=1.0):
        raise ConnectionRefusedError(jid)

    connect = loop.blocking(aconnect)
    for args, kwargs in (((None, "j@h", PASSWORD), {}), ((None, "j@h"), {"password": PASSWORD})):
        with pytest.raises(ConnectionRefusedError) as info:
            connect(*args, **kwargs)
        frames = [entry.frame.f_locals for entry in info.traceback[1:]]  # past this test's frame
        assert len(frames) >= 3 and PASSWORD not in repr(frames)
    assert hider(lambda jid, timeout: None) is None


def test_slixmpp_credentials_reveal_only_to_the_reader():
    creds = Credentials()
    creds["password"] = Secret(PASSWORD)
    creds["username"] = "alice"
    assert creds["password"] == PASSWORD and creds.get("password", "") == PASSWORD
    assert creds.get("email", "x") == "x"
    assert PASSWORD not in repr(creds) and PASSWORD not in str(creds)
    creds["password"] = "plain"  # slixmpp's own setter
    assert isinstance(dict.__getitem__(creds, "password"), Secret) and creds["password"] == "plain"
