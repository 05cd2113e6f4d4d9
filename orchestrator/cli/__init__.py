"""The ``callops`` command.

Thin commands: each command group lives in its own module of this package and is imported only
when it is invoked, so ``callops --help`` never imports aiortc. The work lives in the library; a
command parses, calls and renders. Errors are rendered in exactly one place: :func:`main`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any, NoReturn

import click

from callops import __version__
from callops.errors import CallopsError

#: command name -> (module, attribute, one-line help). Modules are imported on first use.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "emulator": (
        "callops.orchestrator.cli.emulator",
        "emulator",
        "Run or drive the local Messaging Window API emulator.",
    ),
    "consumer": ("callops.orchestrator.cli.consumer", "consumer", "Consumer-side invitation handler."),
    "turn": (
        "callops.orchestrator.cli.turn",
        "turn",
        "TURN/STUN probes, credentials, coturn config, lint, audit.",
    ),
    "probe": (
        "callops.orchestrator.cli.probe",
        "probe",
        "Verdict: will calls connect from this network, and over what?",
    ),
    "call": (
        "callops.orchestrator.cli.call",
        "call",
        "One headless WebRTC call along the whole invitation path.",
    ),
    "smoke": ("callops.orchestrator.cli.call", "smoke", "N headless calls, C at a time, with a report."),
    "call-site": (
        "callops.orchestrator.cli.call_site",
        "call_site",
        "One side (agent or consumer) of a headless call between two networks.",
    ),
    "lab": ("callops.orchestrator.cli.lab", "lab", "The NAT lab: network namespaces with real NATs."),
    "deploy": ("callops.orchestrator.cli.deploy", "deploy", "Render coturn deployment scripts."),
    "exporter": (
        "callops.orchestrator.cli.exporter",
        "exporter",
        "Serve STUN/TURN/ICE probes to Prometheus.",
    ),
    "load": ("callops.orchestrator.cli.load", "load", "Call-shaped relay load: capacity, MOS."),
}

log = logging.getLogger("callops")


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used.

    ``lazy`` maps a command name to ``(module, attribute, one-line help)``.
    """

    def __init__(
        self, *args: Any, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = COMMANDS if lazy is None else lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = self.lazy.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return _not_yet(cmd_name)
            raise
        command = getattr(module, attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attr} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text from the table, without importing the command modules.
        rows = [(name, self.lazy[name][2]) for name in sorted(self.lazy)]
        rows += [(name, cmd.get_short_help_str()) for name, cmd in sorted(self.commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _not_yet(name: str) -> click.Command:
    @click.command(name=name, help="Not available in this build.")
    def missing() -> None:
        raise CallopsError(f"'callops {name}' is not available in this build")

    return missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="callops")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """callops -- prove that WebRTC calls between agents and website visitors will connect.

    Exit codes: 0 success; 1 failure; 2 usage or invalid input; 4 missing tool or privilege;
    5 network unreachable or timed out; 6 credentials rejected; 7 protocol violation.
    `callops probe` and `callops smoke` document their own verdict codes.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    level = logging.DEBUG if (debug or verbose >= 2) else logging.INFO if verbose == 1 else logging.WARNING
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def render_error(exc: CallopsError) -> None:
    """The one place where callops errors are shown to a person."""
    click.echo(f"callops: error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"callops: hint: {exc.hint}", err=True)


def _stopped(exc: KeyboardInterrupt | None) -> NoReturn:
    """A stop signal ended the command: say which, exit 128 + signal (docs/call.md "Signals")."""
    from callops.orchestrator.cli.stopping import Stopped, stop_exit_code

    if isinstance(exc, Stopped):
        click.echo(f"callops: stopped by {exc.name}", err=True)
    else:
        click.echo("callops: interrupted" if exc is not None else "callops: aborted", err=True)
    sys.exit(stop_exit_code(exc) if exc is not None else 130)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``callops`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="callops", standalone_mode=False)
    except CallopsError as exc:
        if debug:
            log.exception("callops error")
        render_error(exc)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        # click wraps KeyboardInterrupt (Ctrl-C, or SIGTERM/SIGHUP as ``Stopped``) into Abort
        _stopped(exc.__cause__ if isinstance(exc.__cause__, KeyboardInterrupt) else None)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        _stopped(exc)
    except Exception as exc:
        if debug:
            raise
        click.echo(f"callops: internal error: {exc.__class__.__name__}: {exc}", err=True)
        click.echo("callops: hint: run again with --debug for the traceback, and report it", err=True)
        sys.exit(70)
    # ctx.exit(n) inside a command comes back here as the return value in non-standalone mode.
    sys.exit(rv if isinstance(rv, int) else 0)


__all__ = ["COMMANDS", "LazyGroup", "cli", "main", "render_error"]
