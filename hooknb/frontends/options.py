"""The account options of the grammar (:mod:`hooknb.frontends.grammar`): ``--jid`` (or a JID
argument), the password (``--password``, ``--password-file``) and the connection (``--host``,
``--port``, ``--cafile``, ``--direct-tls``, ``--plaintext``, ``--max-bytes``).

It also builds the two commands that are only about an account: ``connect`` and ``password set|delete``.

A command's help shows only those it uses: every command ``--jid``; those that connect the password
and connection options; ``password set`` the password options (the password to keep).  The
command line's other commands still take the options they do not show, and ignore them, so that
one set of options can be given to every command.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import GrammarError
from ..xmpp.connection import DEFAULT_MAX_BYTES, ConnectOptions

#: Which account a command acts on without --jid (:mod:`hooknb.accounts`): in the magics, and on
#: the command line (where the command's own process has connected nothing before).
JID_DEFAULT = "$HOOKNB_JID, else the account connected last, else the only one with hooks in the store"
CLI_JID_DEFAULT = "$HOOKNB_JID, else the only account with hooks in the store"


def add_jid_argument(p: argparse.ArgumentParser) -> None:
    """An optional ``JID`` argument (``connect JID``, ``password set JID``), or ``--jid``."""
    p.add_argument("jid_arg", metavar="JID", nargs="?", default=None, help="the account's JID (or --jid)")


def add_jid(p: argparse.ArgumentParser, default: str) -> None:
    """``--jid JID``: the account to act on (``default`` says which without it)."""
    p.add_argument("--jid", default=None, help=f"the account's JID (default: {default})")


def add_password_options(p: argparse.ArgumentParser, hidden: bool = False) -> None:
    """``--password P | --password-file PATH`` (``hidden``: taken, but left out of the help)."""
    secret = p.add_mutually_exclusive_group()
    secret.add_argument("--password", default=None, help=argparse.SUPPRESS if hidden else
                        "password (others can read it: `ps`, shell history, the notebook; by default "
                        "$HOOKNB_PASSWORD, else the keyring, else a prompt)")
    secret.add_argument("--password-file", default=None, metavar="PATH", help=argparse.SUPPRESS if hidden else
                        "read the password from the first line of PATH (a file only you may read)")


def add_connection_options(p: argparse.ArgumentParser, hidden: bool = False) -> None:
    """``--host``, ``--port``, ``--cafile``, ``--direct-tls``, ``--plaintext``, ``--max-bytes``
    (``hidden``: taken, but left out of the help: a command that does not connect ignores them)."""
    def shown(text: str) -> str:
        return argparse.SUPPRESS if hidden else text

    p.add_argument("--host", default=None,
                   help=shown("server host (default: the JID's domain, through its SRV records)"))
    p.add_argument("--port", type=int, default=None,
                   help=shown("server port (default: the SRV records', else 5222, or 5223 with --direct-tls)"))
    p.add_argument("--cafile", default=None, metavar="PATH",
                   help=shown("CA certificates to trust (PEM), e.g. a self-hosted server's own CA"))
    p.add_argument("--direct-tls", action="store_true",
                   help=shown("TLS from the first byte (XEP-0368), as on ports 5223 and 443 (default: STARTTLS)"))
    p.add_argument("--plaintext", action="store_true", help=shown("no TLS (loopback hosts only)"))
    p.add_argument("--max-bytes", type=int, default=None, metavar="N",
                   help=shown("the largest stanza to send to a server that does not advertise its limit "
                              "(XEP-0478): a larger publish is refused before it is sent (default "
                              f"{DEFAULT_MAX_BYTES}; in a notebook: %%config HookMagics.max_bytes)"))


def add_account_options(p: argparse.ArgumentParser, jid_default: str) -> None:
    """``--jid``, the password and the connection options (see :mod:`hooknb.xmpp.connection` and
    :mod:`hooknb.xmpp.passwords`; :func:`connect_options` reads them back): a command that connects."""
    add_jid(p, jid_default)
    add_password_options(p)
    add_connection_options(p)


def add_connect(sub: Any) -> argparse.ArgumentParser:
    """``connect [JID] [--jid JID] [--password P | --password-file PATH] [--host H] [--port N]
    [--cafile PATH] [--direct-tls] [--plaintext] [--max-bytes N]``."""
    p = sub.add_parser("connect", help="connect an XMPP account (it becomes the default account)")
    add_jid_argument(p)
    add_account_options(p, JID_DEFAULT)
    return p


def add_password(sub: Any) -> dict[str, argparse.ArgumentParser]:
    """``password set|delete [JID]``; returns the parser of each action, by name."""
    p = sub.add_parser("password", help="keep or remove an account's password in the system keyring",
                       description="The system keyring (pip install 'hooknb[keyring]') keeps passwords "
                                   "for connecting: without --password, a connection takes the "
                                   "account's from $HOOKNB_PASSWORD, else from the keyring, else asks.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p), required=True)
    parsers = {}
    for name, what in (("set", "keep an account's password in the keyring (asked for twice, or "
                               "--password-file on the command line)"),
                       ("delete", "remove an account's password from the keyring")):
        parsers[name] = action = actions.add_parser(name, help=what, description=f"{what[:1].upper()}{what[1:]}.")
        add_jid_argument(action)
    return parsers


def connect_options(args: argparse.Namespace) -> ConnectOptions:
    """The connection options given with :func:`add_account_options` (checked: a one-line
    :class:`~hooknb.errors.HooknbError` if one is wrong)."""
    return ConnectOptions(host=args.host, port=args.port, cafile=args.cafile, direct_tls=args.direct_tls,
                          plaintext=args.plaintext,
                          max_bytes=DEFAULT_MAX_BYTES if args.max_bytes is None else args.max_bytes)


def jid(args: argparse.Namespace) -> str | None:
    """The account a command names, with its JID argument or ``--jid`` (None: the default one)."""
    named, option = getattr(args, "jid_arg", None), getattr(args, "jid", None)
    if named and option and named != option:
        raise GrammarError(f"JID {named} and --jid {option} name different accounts")
    return named or option
