"""The argument grammar shared by ``%hook``, ``%%hook`` and the command line: every subcommand's
parse, one-line errors, help, ``target()``, and round trips (hypothesis)."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooknb.frontends import grammar, options
from hooknb.errors import HooknbError
from hooknb.xmpp.events import KINDS

SUBCOMMANDS = ("connect", "create", "delete", "list", "events", "runs", "subscribe", "unsubscribe",
               "publish", "status", "feed", "manager", "node", "replay", "enable", "disable", "retry",
               "discard", "output", "password", "import", "apply")


@pytest.fixture(scope="module")
def parser() -> grammar.Parser:
    return grammar.magic_parser()


def error_of(parser: argparse.ArgumentParser, argv: list[str] | str) -> str:
    """The message of the GrammarError that parsing ``argv`` raises (checked to be one line)."""
    with pytest.raises(grammar.GrammarError) as info:
        grammar.parse(parser, argv)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def test_create_parses_every_option(parser):
    args = grammar.parse(parser, "create -s pubsub.example.org -n news -t python_code -P --on publish,retract "
                                 "--phase before --priority -3 --timeout 2.5 --from a@x b@y --max-depth 4 "
                                 "--executor dask --concurrency 3 --unordered --compat libervia -- 'item.id'")
    assert vars(args) == {
        "command": "create", "service": "pubsub.example.org", "node": "news", "uri": None,
        "type": "python_code", "persistent": True, "on": "publish,retract", "phase": "before",
        "priority": -3, "timeout": 2.5, "publishers": ["a@x", "b@y"], "arg": "item.id", "pin": False,
        "max_depth": 4, "create_node": False, "node_config": [], "disabled": False, "executor": "dask",
        "concurrency": 3, "ordered": False, "compat": "libervia", "jid": None}


def test_executor_options_default_to_threads_in_order_and_refuse_bad_values(parser):
    args = grammar.parse(parser, "create -n news mod.hook")
    assert (args.executor, args.concurrency, args.ordered) == ("thread", 8, True)
    cell = grammar.parse(grammar.cell_parser(), "-n news --executor dask --concurrency 2")
    assert (cell.executor, cell.concurrency, cell.ordered) == ("dask", 2, True)
    assert "invalid choice: 'ray'" in error_of(parser, "create -n news --executor ray mod.hook")
    assert "must be at least 1: '0'" in error_of(parser, "create -n news --concurrency 0 mod.hook")


def test_create_defaults(parser):
    args = grammar.parse(parser, ["create", "-n", "news", "mod.hook"])
    assert (args.service, args.type, args.persistent, args.on, args.phase, args.priority, args.timeout,
            args.publishers, args.max_depth) == (None, None, False, None, "event", 0, 30.0, [], 16)


def test_delete_defaults_to_every_hook_of_the_node(parser):
    args = grammar.parse(parser, "delete -n news")
    assert (args.node, args.type, args.arg) == ("news", "", "")
    args = grammar.parse(parser, "delete -u xmpp:pubsub.example.org?;node=news -t python -a m")
    assert (args.uri, args.type, args.arg) == ("xmpp:pubsub.example.org?;node=news", "python", "m")


def test_list_formats(parser):
    assert grammar.parse(parser, "list").output == "table"
    assert grammar.parse(parser, "list -O json").output == "json"
    assert "invalid choice: 'xml'" in error_of(parser, "list -O xml")


@pytest.mark.parametrize("command", ["events", "runs"])
def test_journal_commands_filter_by_node_and_count(parser, command):
    assert vars(grammar.parse(parser, command)) == {"command": command, "node": None, "last": None, "jid": None,
                                                    **({"expand": False} if command == "events" else {})}
    args = grammar.parse(parser, f"{command} -n news --last 5")
    assert (args.node, args.last) == ("news", 5)


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "x"])
def test_last_and_rows_must_be_whole_positive_numbers(parser, value):
    assert "--last" in error_of(parser, ["events", "--last", value])
    assert "--rows" in error_of(parser, ["feed", "--rows", value])


def test_connect_account_options(parser):
    args = grammar.parse(parser, "connect alice@example.org --password 'p w' --host 127.0.0.1 --port 5223 "
                                 "--plaintext")
    assert vars(args) == {"command": "connect", "jid_arg": "alice@example.org", "jid": None, "password": "p w",
                          "password_file": None, "host": "127.0.0.1", "port": 5223, "plaintext": True,
                          "cafile": None, "direct_tls": False, "max_bytes": None}
    assert options.jid(args) == "alice@example.org"
    args = grammar.parse(parser, "connect alice@example.org")
    assert (args.password, args.host, args.port, args.plaintext) == (None, None, None, False)
    assert "--port" in error_of(parser, "connect a@b --port five")


@pytest.mark.parametrize("command", ["subscribe", "unsubscribe"])
def test_subscribe_and_unsubscribe_name_a_target(parser, command):
    args = grammar.parse(parser, f"{command} -s pubsub.example.org -n news")
    assert vars(args) == {"command": command, "service": "pubsub.example.org", "node": "news", "uri": None,
                          "jid": None}


def test_publish_takes_an_item_id_and_a_payload(parser):
    args = grammar.parse(parser, "publish -n news -i first '<x xmlns=\"urn:t\"/>'")
    assert (args.node, args.item, args.payload) == ("news", "first", '<x xmlns="urn:t"/>')
    assert grammar.parse(parser, "publish -n news '<x/>'").item is None
    assert "XML" in error_of(parser, "publish -n news")


def test_status_feed_and_manager(parser):
    assert vars(grammar.parse(parser, "status")) == {"command": "status", "jid": None}
    assert vars(grammar.parse(parser, "manager --jid a@x")) == {"command": "manager", "jid": "a@x"}
    assert grammar.parse(parser, "feed").rows == 20
    assert grammar.parse(parser, "feed --rows 3").rows == 3


def test_cell_parser_options():
    args = grammar.parse(grammar.cell_parser(), "-n news -P --on all --timeout 2 --from a@x b@y")
    assert vars(args) == {"service": None, "node": "news", "uri": None, "persistent": True, "on": "all",
                          "timeout": 2.0, "publishers": ["a@x", "b@y"], "pin": False, "max_depth": 16,
                          "create_node": False, "node_config": [], "disabled": False, "executor": "thread",
                          "concurrency": 8, "ordered": True, "compat": None, "jid": None}
    assert "unrecognized arguments: -t" in error_of(grammar.cell_parser(), "-n news -t python")


@pytest.mark.parametrize("value, kinds", [("publish", "publish"), ("publish,retract", "publish,retract"),
                                          ("purge delete", "purge,delete"), ("all", "all"),
                                          (",config,", "config")])
def test_event_kinds(parser, value, kinds):
    assert grammar.parse(parser, ["create", "-n", "x", "--on", value, "pass"]).on == kinds


@pytest.mark.parametrize("value", ["bogus", "publish,bogus", " ", ","])
def test_unknown_event_kinds_list_the_choices(parser, value):
    message = error_of(parser, ["create", "-n", "x", "--on", value, "pass"])
    assert "unknown event kind" in message and ", ".join(KINDS) in message


@pytest.mark.parametrize("value", ["0", "-2", "soon"])
def test_timeout_must_be_a_positive_number(parser, value):
    assert "--timeout" in error_of(parser, ["create", "-n", "x", "--timeout", value, "pass"])


@pytest.mark.parametrize("value", ["0", "-1", "2.5", "deep"])
def test_max_depth_must_be_a_whole_number_of_at_least_one(parser, value):
    assert "--max-depth" in error_of(parser, ["create", "-n", "x", "--max-depth", value, "pass"])
    assert "--max-depth" in error_of(grammar.cell_parser(), ["-n", "x", "--max-depth", value])


def test_timeout_nan_is_refused(parser):
    error_of(parser, ["create", "-n", "x", "--timeout", "nan", "pass"])


@pytest.mark.parametrize("argv, expected", [
    ([], "%hook: the following arguments are required: COMMAND"),
    (["nope"], "%hook: argument COMMAND: invalid choice: 'nope'"),
    (["create"], "%hook create: the following arguments are required: ARG"),
    (["create", "-n", "x", "-t", "perl", "a"], "%hook create: argument -t/--type: invalid choice: 'perl'"),
    (["create", "-n", "x", "--phase", "during", "a"], "argument --phase: invalid choice: 'during'"),
    (["list", "extra"], "%hook: unrecognized arguments: extra"),
    (["status", "--verbose"], "%hook: unrecognized arguments: --verbose"),
    ("create -n 'unbalanced", "cannot parse the arguments: No closing quotation"),
])
def test_errors_are_one_line_and_say_what_is_wrong(parser, argv, expected):
    assert expected in error_of(parser, argv)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(parser, command):
    with pytest.raises(grammar.HelpRequested) as info:
        grammar.parse(parser, [command, "--help"])
    assert info.value.text.startswith(f"usage: %hook {command} [-h]")


def test_top_level_help_lists_every_subcommand(parser):
    with pytest.raises(grammar.HelpRequested) as info:
        grammar.parse(parser, "-h")
    assert info.value.text.startswith("usage: %hook [-h] COMMAND")
    listed = {line.split()[0] for line in info.value.text.splitlines() if line.startswith("    ")}
    assert listed == set(SUBCOMMANDS)


def test_cell_help():
    with pytest.raises(grammar.HelpRequested) as info:
        grammar.parse(grammar.cell_parser(), "--help")
    assert info.value.text.startswith("usage: %%hook [-h]") and "python_code hook" in info.value.text


def test_target_from_options_and_uri(parser):
    def target(line: str) -> tuple[str | None, str]:
        return grammar.target(grammar.parse(parser, line))

    assert target("subscribe -n news") == (None, "news")
    assert target("subscribe -s pubsub.example.org -n news") == ("pubsub.example.org", "news")
    assert target("subscribe -u xmpp:pubsub.example.org?;node=news") == ("pubsub.example.org", "news")
    assert target("subscribe -u xmpp:pubsub.example.org -n news") == ("pubsub.example.org", "news")
    assert target("subscribe -s pubsub.example.org -n news -u xmpp:pubsub.example.org?;node=news") == (
        "pubsub.example.org", "news")


@pytest.mark.parametrize("line, message", [
    ("subscribe", "a node is required"),
    ("subscribe -s pubsub.example.org", "a node is required"),
    ("subscribe -u xmpp:pubsub.example.org", "a node is required"),
    ("subscribe -s other.example.org -u xmpp:pubsub.example.org?;node=n", "name different services"),
    ("subscribe -n a -u xmpp:pubsub.example.org?;node=b", "name different nodes"),
    ("subscribe -u http://example.org/", "malformed xmpp: URI"),
])
def test_target_errors_are_one_line(parser, line, message):
    with pytest.raises(HooknbError, match=message) as info:
        grammar.target(grammar.parse(parser, line))
    assert "\n" not in str(info.value)


def test_seed_examples_parse(parser):
    args = grammar.parse(parser, "create -n urn:xmpp:microblog:0 -t python_file --persistent "
                                 "~/do_something_neat.py")
    assert (args.node, args.type, args.persistent, args.arg) == (
        "urn:xmpp:microblog:0", "python_file", True, "~/do_something_neat.py")
    args = grammar.parse(parser, "delete -n urn:xmpp:microblog:0 -t python_file --arg ~/x.py")
    assert (args.type, args.arg) == ("python_file", "~/x.py")


# ------------------------------------------------------------------------------ properties
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                max_size=30)


@settings(max_examples=150, deadline=None)
@given(node=texts, arg=texts, type_=st.sampled_from(["python", "python_file", "python_code"]),
       persistent=st.booleans(), publishers=st.lists(texts.filter(lambda t: not t.startswith("-")), max_size=3))
def test_create_round_trips_any_node_and_argument(parser, node, arg, type_, persistent, publishers):
    argv = ["create", f"--node={node}", f"--type={type_}", *(["-P"] if persistent else []),
            *(["--from", *publishers] if publishers else []), "--", arg]
    args = grammar.parse(parser, argv)
    assert (args.node, args.type, args.persistent, args.publishers, args.arg) == (
        node, type_, persistent, publishers, arg)
    assert grammar.parse(parser, shlex.join(argv)) == args  # a magic line quoted like a shell's


tokens = st.one_of(
    st.sampled_from(["create", "delete", "list", "events", "runs", "publish", "subscribe", "connect",
                     "-n", "-s", "-u", "-t", "-a", "-P", "-O", "--on", "--last", "--timeout", "--from",
                     "--phase", "json", "table", "python", "python_file", "python_code", "--help",
                     "xmpp:pubsub.example.org?;node=n", "publish,retract", "0", "-1", "x.py"]),
    st.text(max_size=10))


@settings(max_examples=300, deadline=None)
@given(st.lists(tokens, max_size=8))
def test_any_argv_parses_or_raises_one_clear_error(parser, argv):
    try:
        args = grammar.parse(parser, argv)
        if args.command in ("create", "delete", "subscribe", "unsubscribe", "publish"):
            grammar.target(args)
    except grammar.HelpRequested as help_:
        assert help_.text.startswith("usage:")
    except HooknbError as exc:
        assert str(exc).strip() and "\n" not in str(exc).strip()
    else:
        assert isinstance(args, argparse.Namespace)


@given(st.text(max_size=40))
def test_any_magic_line_splits_or_raises(line):
    try:
        assert isinstance(grammar.split(line), list)
    except grammar.GrammarError as exc:
        assert "cannot parse" in str(exc)


# ------------------------------------------------------------------------------------ accounts
CONNECTION_OPTIONS = {"--jid", "--password", "--password-file", "--host", "--port", "--cafile", "--direct-tls",
                      "--plaintext"}


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def test_every_magic_takes_jid(parser):
    leaves = grammar.leaves(parser) + [grammar.cell_parser(), grammar.publish_cell_parser(),
                                       grammar.replay_cell_parser()]
    # node, password, import: groups (of NODE_ACTIONS, 2 and 1 commands)
    assert len(leaves) == len(SUBCOMMANDS) - 3 + len(grammar.NODE_ACTIONS) + 2 + 1 + 3
    assert all("--jid" in options_of(leaf) for leaf in leaves)
    assert options_of(grammar.leaves(parser)[0]) >= CONNECTION_OPTIONS  # connect


def test_retry_and_discard_name_a_hook_and_maybe_an_item(parser):
    from hooknb.frontends.cli import build_parser

    for action in ("retry", "discard"):
        args = grammar.parse(parser, f"{action} abc123")
        assert (args.command, args.hook, args.item) == (action, "abc123", None)
        args = build_parser().parse_args(["pubsub", "hook", action, "abc123", "item-7"])
        assert (args.action, args.hook, args.item) == (action, "abc123", "item-7")
    with pytest.raises(HooknbError):
        grammar.parse(parser, "retry")
    assert build_parser().parse_args(["run", "--max-attempts", "5"]).max_attempts == 5
    with pytest.raises(HooknbError, match="at least 1"):
        build_parser().parse_args(["run", "--max-attempts", "0"])


CONNECTING = {"hooknb pubsub hook replay", "hooknb pubsub node hook replay", "hooknb pubsub publish", "hooknb run",
              *(f"hooknb pubsub node {a}" for a in grammar.NODE_ACTIONS)}


def test_every_command_line_subcommand_shows_only_the_account_options_it_uses():
    from hooknb.frontends.cli import build_parser

    leaves = grammar.leaves(build_parser())
    hook_actions = ("create", "delete", "list", "replay", "enable", "disable", "retry", "discard")
    assert sorted(leaf.prog for leaf in leaves) == sorted(
        [*(f"hooknb pubsub hook {a}" for a in hook_actions), *(f"hooknb pubsub node hook {a}" for a in hook_actions),
         *(f"hooknb pubsub node {a}" for a in grammar.NODE_ACTIONS), "hooknb pubsub publish",
         "hooknb password set", "hooknb password delete", "hooknb apply", "hooknb run", "hooknb import libervia"])
    every = CONNECTION_OPTIONS | {"--max-bytes"}
    for leaf in leaves:
        assert options_of(leaf) >= every, leaf.prog  # taken by all: one set of options for every command
        help_ = leaf.format_help()
        shown = {o for o in every if re.search(rf"(^|[\s\[]){o}\b(?!-)", help_)}
        if leaf.prog in CONNECTING:  # they connect: every option shown
            assert shown == every, leaf.prog
        elif leaf.prog == "hooknb password set":  # the password to keep
            assert shown == {"--jid", "--password", "--password-file"}
        else:  # create, delete, list, enable, disable do not connect
            assert shown == {"--jid"}, leaf.prog
        assert not any(a.required for a in leaf._actions if "--jid" in a.option_strings), leaf.prog


def test_the_seeds_manual_command_paths_parse_as_written():
    from hooknb.frontends.cli import build_parser

    parser = build_parser()
    made = grammar.parse(parser, "pubsub node hook create -n urn:xmpp:microblog:0 -t python_file --persistent "
                                 "/home/me/do_something_neat.py")
    assert (made.node, made.type, made.persistent, made.arg) == (
        "urn:xmpp:microblog:0", "python_file", True, "/home/me/do_something_neat.py")
    gone = grammar.parse(parser, "pubsub node hook delete -n urn:xmpp:microblog:0 -t python_file "
                                 "--arg /home/me/do_something_neat.py")
    assert (gone.node, gone.type, gone.arg, gone.hooks) == (
        "urn:xmpp:microblog:0", "python_file", "/home/me/do_something_neat.py", [])
    assert grammar.parse(parser, "pubsub hook list -O json").output == "json"
    assert made.func is grammar.parse(parser, "pubsub hook create -n n -P a").func


@pytest.mark.parametrize("line", ["list -O simple", "list -O table", "list"])
def test_list_formats_are_one_set_with_simple_kept_as_a_name_of_table(parser, line):
    from hooknb.frontends.cli import build_parser

    assert grammar.parse(parser, line).output == "table"
    assert grammar.parse(build_parser(), f"pubsub hook {line}").output == "table"


def test_delete_takes_hook_ids(parser):
    assert grammar.parse(parser, "delete 0123abcd 4567ef01").hooks == ["0123abcd", "4567ef01"]
    assert grammar.parse(parser, "delete -n news").hooks == []


@pytest.mark.parametrize("line, account", [("connect a@x", "a@x"), ("connect --jid a@x", "a@x"),
                                           ("connect a@x --jid a@x", "a@x"), ("connect", None),
                                           ("password set b@x", "b@x"), ("password delete --jid b@x", "b@x"),
                                           ("delete -n n --jid c@x", "c@x"), ("list", None)])
def test_the_account_named_by_a_jid_argument_or_jid(parser, line, account):
    assert options.jid(grammar.parse(parser, line)) == account


def test_a_jid_argument_and_another_jid_are_refused(parser):
    with pytest.raises(grammar.GrammarError, match="^JID a@x and --jid b@x name different accounts$"):
        options.jid(grammar.parse(parser, "connect a@x --jid b@x"))
    assert "not allowed with argument --password" in error_of(parser, "connect a@x --password p --password-file f")


def test_apply_takes_a_file_and_dry_run(parser):
    args = grammar.parse(parser, "apply hooks.toml --dry-run --jid a@x")
    assert (args.command, args.file, args.dry_run, args.jid) == ("apply", "hooks.toml", True, "a@x")
    with pytest.raises(grammar.GrammarError, match="FILE"):
        grammar.parse(parser, "apply")
