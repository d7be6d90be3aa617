"""The ``wikipersona`` command line.

Commands live next to the code they drive (``wiki/commands.py``, ``llm/commands.py``, ...) and are
imported only when invoked, so ``wikipersona --help`` stays fast and one command's heavy imports
(datasets, pyarrow) never slow another's commands.
"""

from __future__ import annotations

import importlib
import sys

import click

from wikipersona_data import __version__
from wikipersona_data.errors import WikipersonaError

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "scan": "wikipersona_data.wiki.commands:scan",
    "show": "wikipersona_data.wiki.commands:show",
    "get-dump": "wikipersona_data.wiki.commands:get_dump",
    "llm-sim": "wikipersona_data.llm.commands:llm_sim",
    "llm-local": "wikipersona_data.llm.commands:llm_local",
    "build": "wikipersona_data.stages.commands:build",
    "estimate": "wikipersona_data.stages.commands:estimate",
    "demo": "wikipersona_data.release.commands:demo",
    "verify": "wikipersona_data.release.commands:verify",
    "extend": "wikipersona_data.release.commands:extend",
    "publish": "wikipersona_data.release.commands:publish",
    "audit": "wikipersona_data.release.audit_commands:audit",
    "batch": "wikipersona_data.llm.batch_commands:batch",
    "evaluate": "wikipersona_data.evaluate.commands:evaluate",
}

SHORT_HELP: dict[str, str] = {
    "scan": "One pass over a dump: every person page -> candidate table.",
    "show": "One page by title from a dump (follows redirects), or --online from the live wiki.",
    "get-dump": "Download a multistream dump and its index, resumable, sha1-verified.",
    "llm-sim": "Run the simulated OpenAI-compatible server on loopback.",
    "llm-local": "Run a real small model (llama.cpp, SmolLM2-135M) on loopback, no key or GPU.",
    "build": "Run every stage of a recipe (resumable) into a release folder.",
    "estimate": "Count calls, tokens and cost of a recipe before spending anything.",
    "demo": "Build the bundled demo recipe with the simulator, then load it.",
    "verify": "Re-check a release folder (schema, counts, checksums, leaks).",
    "extend": "Add personas to a release, paying only for new LLM calls.",
    "publish": "Upload a release to the Hugging Face Hub and tag it vX.Y.Z.",
    "audit": "Export a judge-audit sheet; import filled sheets (agreement, kappa) as a patch version.",
    "batch": "Export a build's pending requests for `vllm run-batch`; import the results into its cache.",
    "evaluate": "Win rates of a policy per prefix mode (and a judge's preference accuracy) on a release.",
}


class _StdoutClosed(Exception):
    """The reader of stdout went away; not an OSError, so click lets it through to :func:`main`."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _StdoutClosed from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wikipersona")
def cli() -> None:
    """Build, verify, version and publish WikiPersona, a personalized-alignment
    preference dataset grounded in Wikipedia."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one ``error:`` line on stderr and a non-zero exit."""
    try:
        result = cli.main(args=argv, prog_name="wikipersona", standalone_mode=False)
    except WikipersonaError as err:
        from wikipersona_data.redact import scrub

        click.echo(f"error: {scrub(str(err), aggressive=True)}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except (BrokenPipeError, _StdoutClosed):
        return _stdout_closed()
    return result if isinstance(result, int) else 0


def _stdout_closed() -> int:
    """The reader went away (``wikipersona publish --dry-run | head``): not an error of ours, so exit 0
    without a message, and point stdout at /dev/null so the interpreter's final flush stays quiet too."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
