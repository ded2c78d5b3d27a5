"""MkDocs hooks of the shufflesearch docs (`hooks:` in mkdocs.yml); none of this ships with the package.

- `reference/cli.md`: the marker `<!-- cli-reference -->` becomes, at build time, the usage and options
  table of every sub-command of `shufflesearch.cli.build_parser()`. No flag is written by hand.
- API pages name objects by their public, top-level name (`::: shufflesearch.search`), wherever the
  package defines them; griffe resolves those re-exports statically, lazy `__getattr__` ones included
  when the package also imports them under `if TYPE_CHECKING:`. Where it cannot (a name served only by
  `__getattr__`; or a name that is also a submodule, such as a function `search` imported over a module
  `search`, where griffe sees the module), the directive is rewritten to the object's defining path,
  found by importing the package, and the build says so in an INFO line.
- `benchmarks/results/*.png` are added to the site under `assets/results/`, so the benchmarks page
  shows the committed plots without copies of them in docs/.
"""

from __future__ import annotations

import argparse
import functools
import html
import importlib
import inspect
import logging
import re
from pathlib import Path

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.shufflesearch")

ROOT = Path(__file__).resolve().parent.parent
CLI_MARKER = "<!-- cli-reference -->"
PACKAGE = "shufflesearch"
DIRECTIVE = re.compile(rf"^(?P<indent>\s*):::\s+(?P<ident>{PACKAGE}\.(?P<name>[A-Za-z_]\w*))\s*$", re.M)
USAGE_WIDTH = 76  # what a code block shows without scrolling beside both sidebars at 1280 px


# --- the CLI reference ------------------------------------------------------------------------------
def _escape(text: str) -> str:
    """Text for a Markdown table cell: HTML escaped outside `code spans`, pipes escaped everywhere."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = html.escape(parts[i], quote=False)
    return "`".join(parts).replace("|", r"\|").replace("\n", " ")


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help:
        return ""
    return parser._get_formatter()._expand_help(action)  # %(default)s and the like, as --help prints them


def _value(action: argparse.Action) -> str:
    if action.choices is not None:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    if not action.option_strings:  # a positional: its name is in the first column
        return {"+": "one or more", "*": "zero or more", "?": "optional"}.get(action.nargs, "")
    if action.nargs == 0:
        return ""
    metavar = action.metavar or action.dest.upper()
    if action.nargs in ("+", "*"):
        return f"`{metavar} ...`"
    return f"`{metavar}`"


def _default(action: argparse.Action) -> str:
    if action.required and action.option_strings:
        return "required"
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue  # -h is on every command; the sub-commands have the table above and a section each; a
            # deprecated spelling is not shown
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
        rows.append(f"| {name} | {_value(action)} | {_default(action)} | {_escape(_help(parser, action))} |")
    if not rows:
        return ["No arguments besides `-h`."]
    # md_in_html: the wrapper lets docs/stylesheets/extra.css keep flags and values on one line
    return ['<div class="cli-options" markdown>', "", "| argument | value | default | description |",
            "|---|---|---|---|", *rows, "", "</div>"]


def _usage(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=USAGE_WIDTH)
    return parser.format_usage().strip()


def cli_reference() -> str:
    from shufflesearch.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {a.dest: a.help for a in sub._choices_actions}
    out = ["```text", _usage(parser), "```", "", "| command | does |", "|---|---|"]
    out += [f"| [`{name}`](#{name}) | {_escape(helps.get(name) or '')} |" for name in sub.choices]
    out.append("")
    for table_row in _options_table(parser):
        out.append(table_row)
    for name, sp in sub.choices.items():
        out += ["", f"## {name} {{#{name}}}", "", _escape(sp.description or helps.get(name) or ""), "",
                "```text", _usage(sp), "```", ""]
        out += _options_table(sp)
    return "\n".join(out) + "\n"


# --- API directives ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _static_package():
    import griffe

    try:
        return griffe.load(PACKAGE, search_paths=[str(ROOT)], allow_inspection=False, resolve_aliases=True,
                           resolve_external=False)
    except Exception as e:  # noqa: BLE001 - an unloadable package fails the build later, with its own message
        log.warning("griffe could not load %s statically: %s", PACKAGE, e)
        return None


def _defining_path(name: str) -> str | None:
    """The path griffe should document for `shufflesearch.<name>`, when it is not that name itself."""
    pkg = _static_package()
    try:
        static = pkg[name] if pkg is not None else None
    except KeyError:
        static = None
    if static is not None and not static.is_module:
        return None  # griffe sees the re-export (an alias) or the object itself
    obj = getattr(importlib.import_module(PACKAGE), name)  # a lazy __getattr__ answers here too
    if inspect.ismodule(obj):
        return None
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname:
        return None
    return f"{module}.{qualname}"


def _rewrite_directives(markdown: str, src: str) -> str:
    def sub(m: re.Match) -> str:
        path = _defining_path(m["name"])
        if path is None:
            return m[0]
        log.info("%s: ::: %s documented from its defining path %s", src, m["ident"], path)
        return f"{m['indent']}::: {path}"

    return DIRECTIVE.sub(sub, markdown)


# --- hooks -------------------------------------------------------------------------------------------
def on_files(files, config):
    results = ROOT / "benchmarks" / "results"
    for png in sorted(results.glob("*.png")):
        files.append(File.generated(config, f"assets/results/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if ":::" in markdown:
        markdown = _rewrite_directives(markdown, page.file.src_uri)
    return markdown
