"""The command line's exit codes come from one table (:data:`hooknb.errors.EXIT_CODES`): each
error class's code, by the nearest class of its MRO, and none for a bug."""

from __future__ import annotations

import sqlite3

import pytest

from hooknb import errors


@pytest.mark.parametrize("exc, code", [
    (errors.GrammarError("bad"), 2),
    (errors.HooknbError("bad input"), 2),
    (errors.PayloadTooLargeError("too big"), 2),
    (errors.PubSubError("refused", "forbidden"), 2),
    (errors.ConnectError("no route"), 1),
    (errors.ConnectionLostError("lost", "connection-lost"), 1),
    (errors.KeyringError("no keyring"), 1),
    (errors.TrustError("others may write it"), 1),
    (errors.StoreError("locked"), 3),
    (errors.HookCreateError("syntax error"), 4),
    (NotADirectoryError(20, "Not a directory"), 1),
    (KeyboardInterrupt(), 130),
    (ValueError("a bug"), None),
    (sqlite3.OperationalError("a bug too"), None),
])
def test_each_error_has_its_exit_code(exc, code):
    assert errors.exit_code(exc) == code


def test_a_lost_connection_is_still_a_pubsub_error():
    """Code catching PubSubError (hooks publishing, the magics) sees a lost connection as before."""
    assert issubclass(errors.ConnectionLostError, errors.PubSubError)


def test_the_codes_are_distinct_and_documented():
    codes = (errors.EXIT_OK, errors.EXIT_FAILURE, errors.EXIT_USAGE, errors.EXIT_STORE, errors.EXIT_CREATE)
    assert codes == (0, 1, 2, 3, 4)
    from pathlib import Path

    table = (Path(__file__).resolve().parents[2] / "docs" / "cli.rst").read_text()
    for code in codes:
        assert f"   * - {code}\n" in table
