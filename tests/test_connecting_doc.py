"""The troubleshooting lines of ``docs/connecting.rst`` are the lines hooknb prints: each failure is
made for real (the console script against the local server, or the API) and its line compared,
shape for shape, with the page's (JIDs, hosts, ports, paths and quoted names aside)."""

from __future__ import annotations

import os
import re
import socket
import ssl
from pathlib import Path

import pytest
from helpers import TEN_MIB, payload
from processes import hooknb

from hooknb import server as srv
from hooknb.xmpp.connection import describe_failure
from hooknb.errors import ConnectError

pytestmark = pytest.mark.integration
PAGE = Path(__file__).resolve().parent.parent / "docs" / "connecting.rst"


def shape(line: str) -> str:
    """``line`` with what differs between the page's example and a run made into placeholders."""
    line = re.sub(r"[\w.+-]+@[\w.-]+", "JID", line)
    line = re.sub(r"/\S+", "PATH", line)
    line = re.sub(r"[\w.-]+:\d+", "ADDRESS", line)
    line = re.sub(r"\b(?:[a-z0-9-]+\.)+[a-z]+\b|\blocalhost\b", "HOST", line)
    line = re.sub(r"'[^']*'", "'NAME'", line)
    return re.sub(r"\b\d+ s\b", "N s", line)


def documented() -> list[str]:
    return re.findall(r"^``(hooknb: .+)``$", PAGE.read_text(), flags=re.MULTILINE)


def certificate_failure(code: int) -> str:
    """The line of a certificate that fails verification with OpenSSL's ``code`` (made for real by
    the server certificates of ``test_tls.py``, which check the whole line)."""
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_code, error.verify_message = code, ""
    return f"hooknb: cannot connect alice@localhost: {describe_failure(error, 'localhost', 'localhost')}"


def test_every_troubleshooting_line_is_what_hooknb_prints(home, account, server, make_host, tmp_path):
    jid, password = account("doc")
    where = ["--host", server.host, "--port", str(server.port)]
    trusted = [*where, "--cafile", server.cafile]
    env = {"HOOKNB_PASSWORD": password}
    runs = [  # (arguments of `hooknb pubsub node create -n doc`, environment, exit code)
        (["--jid", jid, *where], env, 1),  # unknown CA
        (["--jid", jid, *trusted, "--direct-tls"], env, 1),  # direct TLS on a STARTTLS port
        (["--jid", jid, "--host", server.host, "--port", str(server.direct_tls_port), "--cafile", server.cafile],
         env, 1),  # STARTTLS on a direct TLS port
        (["--jid", jid, "--host", server.host, "--port", str(srv.free_port()), "--cafile", server.cafile], env, 1),
        (["--jid", "alice@nonexistent.invalid", "--cafile", server.cafile], env, 1),  # no address in DNS
        (["--jid", "alice@other.test", *trusted], env, 1),  # a domain the server does not serve
        (["--jid", jid, *trusted], {"HOOKNB_PASSWORD": "wrong"}, 1),
        (["--jid", jid, *trusted], {"HOOKNB_PASSWORD": ""}, 2),  # no password, nobody to ask
        (["--jid", "alice", *where], env, 2),
        (["--jid", jid, "--host", server.host, "--port", "99999"], env, 2),
        (["--jid", "alice@example.org", "--plaintext"], env, 2),
        (["--jid", jid, *where, "--cafile", str(tmp_path / "ca.pem")], env, 2),  # no such CA file
    ]
    printed = []
    for args, environment, code in runs:
        result = hooknb("pubsub", "node", "create", "-n", "doc", *args, env=environment)
        assert (result.returncode, result.stdout) == (code, ""), (args, result.stderr)
        printed.append(result.stderr.rstrip("\n"))
    with pytest.raises(ConnectError) as plain:  # plain text to a server that requires TLS
        make_host().connect(jid, password, host=server.host, port=server.port, plaintext=True, timeout=2)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        with pytest.raises(ConnectError) as stalled:
            make_host().connect(jid, password, host="127.0.0.1", port=silent.getsockname()[1],
                                cafile=server.cafile, timeout=2)
    printed += [f"hooknb: {plain.value}", f"hooknb: {stalled.value}", certificate_failure(62),
                certificate_failure(10)]

    node, big = f"doc-{os.getpid()}", tmp_path / "big.xml"
    assert hooknb("pubsub", "node", "create", "-s", server.pubsub, "-n", node, "--jid", jid, *trusted,
                  env=env).returncode == 0
    big.write_text(payload(TEN_MIB, server.pubsub, node, ""))  # 10 MiB to the byte, as on the page
    result = hooknb("pubsub", "publish", "-s", server.pubsub, "-n", node, "-f", str(big), "--jid", jid,
                    *trusted, env=env)
    assert result.returncode == 2
    printed.append(result.stderr.rstrip("\n"))

    assert all("\n" not in line and line.startswith("hooknb: ") for line in printed), printed
    page = [shape(line) for line in documented()]
    assert len(page) == len(set(page)) == len(printed)
    assert sorted(page) == sorted(shape(line) for line in printed)
