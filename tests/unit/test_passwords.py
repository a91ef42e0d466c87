"""Where passwords come from (argument, file, ``$HOOKNB_PASSWORD``, the keyring, a prompt, else
one line), with a real keyring backend (keyrings.alt's file, in a scratch directory), and which
account a command acts on without ``--jid``."""

from __future__ import annotations

import io
import os
import sys

import keyring
import pytest

from hooknb import accounts

from hooknb.xmpp import passwords
from hooknb.errors import GrammarError, HooknbError, KeyringError

JID = "alice@localhost"


def never(_question: str) -> str:
    raise AssertionError("asked for a password although another source had one")


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("HOOKNB_PASSWORD", raising=False)
    monkeypatch.delenv("HOOKNB_JID", raising=False)


def test_the_order_argument_environment_keyring_prompt(keyring_backend, no_env, monkeypatch):
    asked = []

    def prompt(question: str) -> str:
        asked.append(question)
        return "typed"

    passwords.keep(JID, "from-keyring")
    monkeypatch.setenv("HOOKNB_PASSWORD", "from-env")
    assert passwords.resolve(JID, "given", prompt=never, interactive=True).reveal() == "given"
    assert passwords.resolve(JID, prompt=never, interactive=True).reveal() == "from-env"
    monkeypatch.delenv("HOOKNB_PASSWORD")
    assert passwords.resolve(JID, prompt=never, interactive=True).reveal() == "from-keyring"
    assert passwords.resolve(f"{JID}/phone", prompt=never).reveal() == "from-keyring"  # kept for the bare JID
    passwords.forget(JID)
    assert passwords.resolve(JID, prompt=prompt, interactive=True).reveal() == "typed"
    assert asked == [f"password for {JID}: "]
    with pytest.raises(HooknbError) as info:
        passwords.resolve(JID, prompt=never, interactive=False)
    assert str(info.value) == (f"no password for {JID} and {passwords.NOBODY}: set $HOOKNB_PASSWORD, give "
                               f"--password-file or keep it in the system keyring (hooknb password set {JID})")


@pytest.mark.parametrize("refusal", [EOFError, NotImplementedError])
def test_a_prompt_nobody_can_answer_is_one_line(no_env, refusal):
    """A kernel without input raises StdinNotImplementedError (a NotImplementedError) from getpass."""

    def prompt(_question: str) -> str:
        raise refusal("raw_input was called, but this frontend does not support input requests.")

    with pytest.raises(HooknbError) as info:
        passwords.resolve(JID, prompt=prompt, interactive=True)
    assert str(info.value).startswith(f"no password for {JID} and {passwords.NOBODY}: ")


def test_without_the_keyring_installed_the_line_says_how_to_install_it(no_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)  # import keyring raises ImportError
    with pytest.raises(HooknbError) as info:
        passwords.resolve(JID, interactive=False)
    assert str(info.value).endswith(f"(pip install 'hooknb[keyring]', then hooknb password set {JID})")
    with pytest.raises(KeyringError, match=r"^the keyring is not installed: pip install 'hooknb\[keyring\]'$"):
        passwords.keep(JID, "x")


def test_a_keyring_that_cannot_be_read_is_named_and_skipped(no_env, monkeypatch):
    from keyring.backends.fail import Keyring as NoBackend

    previous = keyring.get_keyring()
    keyring.set_keyring(NoBackend())
    try:
        with pytest.raises(HooknbError) as info:
            passwords.resolve(JID, interactive=False)
        assert "; the keyring: NoKeyringError: No recommended backend was available." in str(info.value)
        assert passwords.resolve(JID, prompt=lambda _q: "typed", interactive=True).reveal() == "typed"
    finally:
        keyring.set_keyring(previous)


def test_a_keyring_that_forgets_is_refused():
    """The suite's default backend, keyring.backends.null, accepts passwords and forgets them."""
    with pytest.raises(KeyringError, match=f"^the keyring \\(null Keyring\\) did not keep the password of {JID}$"):
        passwords.keep(JID, "secret")


def test_keep_and_forget(keyring_backend):
    passwords.keep(f"{JID}/laptop", "s3cret")
    assert keyring.get_password("hooknb", JID) == "s3cret"
    assert passwords.backend() == "file PlaintextKeyring"
    passwords.forget(JID)
    assert keyring.get_password("hooknb", JID) is None
    with pytest.raises(KeyringError, match=f"^no password of {JID} in the keyring \\(file PlaintextKeyring\\)$"):
        passwords.forget(JID)


# ------------------------------------------------------------------------------------ files
def test_a_password_file_gives_its_first_line(tmp_path, no_env):
    path = tmp_path / "pw"
    path.write_text("first line\r\nsecond line\n")
    path.chmod(0o600)
    assert passwords.resolve(JID, file=str(path), prompt=never).reveal() == "first line"
    path.chmod(0o400)
    assert passwords.read_file(str(path)) == "first line"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_password_file_others_may_read_is_refused(tmp_path, mode):
    path = tmp_path / "pw"
    path.write_text("secret\n")
    path.chmod(mode)
    with pytest.raises(HooknbError) as info:
        passwords.read_file(str(path))
    assert str(info.value) == (f"password file {path} may be read by group or others (mode {mode:o}): "
                               f"make it private with chmod 600 {path}")
    assert "secret" not in str(info.value)


def test_bad_password_files_are_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\nsecret\n")
    empty.chmod(0o600)
    with pytest.raises(HooknbError, match=f"^password file {empty} has an empty first line$"):
        passwords.read_file(str(empty))
    with pytest.raises(HooknbError, match="^cannot read the password file /nonexistent/pw: No such file"):
        passwords.read_file("/nonexistent/pw")
    with pytest.raises(HooknbError, match=f"^cannot read the password file {tmp_path}: Is a directory$"):
        os.chmod(tmp_path, 0o700)
        passwords.read_file(str(tmp_path))
    with pytest.raises(GrammarError, match="^--password and --password-file exclude each other$"):
        passwords.resolve(JID, "given", str(empty))


def test_a_pipe_such_as_process_substitution_is_a_password_file(no_env):
    read, write = os.pipe()
    os.write(write, b"from-a-pipe\n")
    os.close(write)
    try:
        assert passwords.read_file(f"/dev/fd/{read}") == "from-a-pipe"
    finally:
        os.close(read)


# ------------------------------------------------------------------------------------ new passwords
def test_a_new_password_is_asked_twice_or_read_from_a_line(monkeypatch):
    answers = iter(["one", "one", "one", "two"])
    assert passwords.ask_new(JID, prompt=lambda _q: next(answers)) == "one"
    with pytest.raises(HooknbError, match="^the two passwords differ: nothing was kept$"):
        passwords.ask_new(JID, prompt=lambda _q: next(answers))

    def kernel_without_input(_question: str) -> str:
        raise NotImplementedError("this frontend does not support input requests")

    with pytest.raises(HooknbError) as info:
        passwords.ask_new(JID, prompt=kernel_without_input)
    assert str(info.value) == (f"cannot ask for the password of {JID}: {passwords.NOBODY}; run hooknb "
                               f"password set {JID} in a terminal")
    monkeypatch.setattr(passwords, "can_ask", lambda: False)  # as with a pipe on stdin
    assert passwords.ask_new(JID, io.StringIO("piped\nrest\n"), prompt=never) == "piped"
    with pytest.raises(HooknbError, match=f"^the password for {JID} is empty: nothing was kept$"):
        passwords.ask_new(JID, io.StringIO(""), prompt=never)


# ------------------------------------------------------------------------------------ accounts
def test_the_account_order(monkeypatch):
    monkeypatch.delenv("HOOKNB_JID", raising=False)

    def stored(*jids: str):
        return lambda: iter(jids)

    assert accounts.choose("given@x", "last@x", stored("a@x")) == "given@x"
    assert accounts.choose(None, "last@x", stored("a@x")) == "last@x"
    assert accounts.choose(None, None, stored("a@x", "a@x")) == "a@x"
    monkeypatch.setenv("HOOKNB_JID", "env@x")
    assert accounts.choose(None, "last@x", stored()) == "env@x"
    assert accounts.choose("given@x", "last@x", stored()) == "given@x"
    monkeypatch.delenv("HOOKNB_JID")
    with pytest.raises(HooknbError, match=r"^which account\? the store holds hooks of a@x, b@x: give --jid"):
        accounts.choose(None, None, stored("b@x", "a@x"))
    with pytest.raises(HooknbError, match="^no account: give --jid JID, set \\$HOOKNB_JID, or connect one"):
        accounts.choose(None, None, stored())


def test_a_scratch_servers_passwords_never_start_with_a_dash(monkeypatch):
    import secrets

    from hooknb import server

    drawn = iter(["-AbCdEfGhIjK", "xYz-_0123456"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert server.new_password() == "pAbCdEfGhIjK"  # "--password -AbC..." read as an option
    assert server.new_password() == "xYz-_0123456"
