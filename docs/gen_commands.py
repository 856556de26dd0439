"""Write docs/commands.md from the click commands themselves, so the reference cannot drift from --help.

Every command and subcommand of `variant` gets a heading (`## variant patch export`, anchor
`variant-patch-export`) and its `--help` text verbatim, formatted as a terminal of 80 columns shows it (what
`variant ... --help` prints on any terminal at least that wide). `--check` writes nothing and
exits 1 naming the commands whose text differs; tests/test_docs.py runs it, and `make docs`
regenerates the file before building the site.

    python3 docs/gen_commands.py [--out FILE] [--check]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from builder import cli as _registers  # noqa: F401  (importing builder.cli registers every command)
from builder.cli.app import cli

DEFAULT_OUT = Path(__file__).resolve().parent / "commands.md"
# click wraps help at min(terminal width, 80) - 2 columns: this fixed width makes the text the same on
# every machine, and equal to what a terminal of 80 columns or more shows.
WIDTH = 78

HEADER = """\
# Command reference

Generated from the click commands by `python3 docs/gen_commands.py` (`make docs`): each section is
that command's `--help`, verbatim. Do not edit by hand; `tests/test_docs.py` fails when this file
differs from what the commands print. What the commands do, with real output, is in the task pages
(see the [index](index.md)).

"""


def walk(
    command: click.Command, path: tuple[str, ...], parent: click.Context | None
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Each command's path and its --help text, the group first, then its subcommands by name."""
    name = path[-1] if path else "variant"
    ctx = click.Context(command, info_name=name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    yield path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            found = command.get_command(ctx, sub)
            if found is not None and not found.hidden:
                yield from walk(found, (*path, sub), ctx)


def sections() -> dict[str, str]:
    """'variant patch export' -> its Markdown section (heading and the help in a fenced block)."""
    out: dict[str, str] = {}
    for path, text in walk(cli, (), None):
        title = " ".join(("variant", *path))
        out[title] = f"## {title}\n\n```text\n{text.rstrip()}\n```\n"
    return out


def render() -> str:
    parts = sections()
    index = "".join(f"- [`{title}`](#{title.replace(' ', '-')})\n" for title in parts)
    return HEADER + index + "\n" + "\n".join(parts.values())


def differing(old: str, parts: dict[str, str]) -> list[str]:
    """The commands whose section is missing from old or not verbatim there, and those old has extra."""
    changed = [title for title, section in parts.items() if section not in old]
    titles = (line.removeprefix("## ") for line in old.splitlines() if line.startswith("## variant"))
    return changed + [f"{title} (no such command now)" for title in titles if title not in parts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: docs/commands.md")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if FILE is stale")
    args = parser.parse_args(argv)
    out: Path = args.out
    text = render()
    if args.check:
        try:
            old = out.read_text(encoding="utf-8")
        except FileNotFoundError:
            print(f"{out}: missing; `make docs` (or python3 docs/gen_commands.py) writes it", file=sys.stderr)
            return 1
        if old == text:
            return 0
        stale = differing(old, sections()) or ["(the page around the commands: header or index)"]
        print(
            f"{out}: stale, not what `variant ... --help` prints now; `make docs` regenerates it. "
            f"Differs at: {', '.join(stale)}",
            file=sys.stderr,
        )
        return 1
    # written beside, then renamed: an interrupted run leaves the old file, never half of a new one
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
