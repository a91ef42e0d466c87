"""Sphinx directives rendering the magics' and the command line's reference from the parsers
themselves, so it never drifts.

``.. hooknb-magics::`` renders one section per ``%hook`` subcommand (its help, as argparse
prints it), then ``%%hook``; ``.. hooknb-magic-settings::`` renders the ``%config`` settings
of :class:`hooknb.frontends.magics.HookMagics` from its traitlets; ``.. hooknb-cli::`` renders one section
per ``hooknb`` command, subcommands included, from :func:`hooknb.frontends.cli.build_parser`.
"""

from __future__ import annotations

import argparse
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from hooknb.frontends import grammar
from hooknb.frontends.cli import build_parser
from hooknb.frontends.completion import subparsers as subcommands
from hooknb.frontends.magics import HookMagics

WIDTH = 92  # columns of the rendered help, whatever the terminal building the docs


def _fixed_width(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=WIDTH)
    return parser


def _section(title: str, intro: str, parser: argparse.ArgumentParser) -> list[str]:
    help_text = _fixed_width(parser).format_help().rstrip()
    return [title, "-" * len(title), "", intro, "", ".. code-block:: text", "",
            *("   " + line if line else "" for line in help_text.splitlines()), ""]


def _summary(parser: argparse.ArgumentParser, name: str) -> str:
    """The one-line help of subcommand ``name``, as ``%hook --help`` lists it."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return next(a.help for a in action._choices_actions if a.dest == name)  # noqa: SLF001
    raise KeyError(name)


class _Generated(SphinxDirective):
    """A directive whose body is reStructuredText generated at build time."""

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        holder = nodes.Element()
        nested_parse_with_titles(self.state, StringList(self.lines(), source="<generated>"), holder)
        return holder.children


class MagicsDirective(_Generated):
    """Every ``%hook`` subcommand, then the ``%%hook`` cell magic."""

    def lines(self) -> list[str]:
        top = _fixed_width(grammar.magic_parser())
        out = _section("%hook", "The line magic; ``%hook COMMAND --help`` prints a command's help.", top)
        for name, parser in subcommands(top).items():
            out += _section(f"%hook {name}", _sentence(_summary(top, name)), parser)
            for action, sub in subcommands(parser).items():  # node create|delete|purge|config
                out += _section(f"%hook {name} {action}", _sentence(_summary(parser, action)),
                                _fixed_width(sub))
        out += _section("%%hook", "The cell body becomes a ``python_code`` hook (see :doc:`hooks`); "
                                  "running the cell again replaces it.", grammar.cell_parser())
        out += _section("%%hook publish", "The cell body, taken as it is, is published as an item.",
                        _fixed_width(grammar.publish_cell_parser()))
        out += _section("%%hook replay", "The cell body runs, as the hook ``%%hook`` would make of it, on "
                                         "the items the node holds; no hook is created (see :doc:`hooks`).",
                        _fixed_width(grammar.replay_cell_parser()))
        return out


def _sentence(summary: str | None) -> str:
    return f"{summary[:1].upper()}{summary[1:]}." if summary else ""


class CommandLineDirective(_Generated):
    """``hooknb`` and every command under it, depth first."""

    def lines(self) -> list[str]:
        return _command("hooknb", "The command line; ``hooknb COMMAND --help`` prints a command's help.",
                        _fixed_width(build_parser()))


def _command(title: str, intro: str, parser: argparse.ArgumentParser) -> list[str]:
    alias = getattr(parser, "alias_of", None)  # pubsub node hook: shown once, under its other name
    if alias:
        return [title, "-" * len(title), "", f"{intro}  Its commands and options are those of ``{alias}``.", ""]
    out = _section(title, intro, parser)
    for name, sub in subcommands(parser).items():
        out += _command(f"{title} {name}", _sentence(_summary(parser, name)), _fixed_width(sub))
    return out


class SettingsDirective(_Generated):
    """The configurable traitlets of :class:`~hooknb.frontends.magics.HookMagics`."""

    def lines(self) -> list[str]:
        out = [".. list-table::", "   :header-rows: 1", "", "   * - setting", "     - default",
               "     - meaning"]
        for name, trait in sorted(HookMagics.class_traits(config=True).items()):
            out += [f"   * - ``HookMagics.{name}``", f"     - ``{trait.default_value!r}``",
                    f"     - {trait.help}"]
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directives."""
    app.add_directive("hooknb-magics", MagicsDirective)
    app.add_directive("hooknb-magic-settings", SettingsDirective)
    app.add_directive("hooknb-cli", CommandLineDirective)
    return {"version": "1", "parallel_read_safe": True}
