"""``callops lab``: the NAT lab (network namespaces with real NATs, coturn inside)."""

from __future__ import annotations

import os
import sys

import click

from callops.orchestrator.lab.topology import DEFAULT_PREFIX, TOPOLOGIES

_prefix_option = click.option(
    "--prefix",
    default=DEFAULT_PREFIX,
    show_default=True,
    envvar="CALLOPS_LAB_PREFIX",
    help="Name prefix of everything the lab creates.",
)


@click.group()
@click.pass_context
def lab(ctx: click.Context) -> None:
    """The NAT lab: an "internet" (203.0.113.0/24), a TURN host, and two sites behind NATs.

    Linux only, as root, with iproute2 and iptables. Ctrl-C, SIGTERM or SIGHUP during `lab up`
    remove what was built so far (exit 130/143/129).
    """
    from callops.orchestrator.cli.stopping import stop_signals

    ctx.with_resource(stop_signals())


@lab.command()
@click.option("--topology", type=click.Choice(TOPOLOGIES), help="Topology of both sites.")
@click.option("--agent", "agent_topology", type=click.Choice(TOPOLOGIES), help="Topology of the agent site.")
@click.option(
    "--consumer", "consumer_topology", type=click.Choice(TOPOLOGIES), help="Topology of the consumer site."
)
@click.option("--json", "as_json", is_flag=True, help="Print the lab state as JSON.")
@_prefix_option
def up(
    topology: str | None,
    agent_topology: str | None,
    consumer_topology: str | None,
    as_json: bool,
    prefix: str,
) -> None:
    """Build the lab (replacing one with the same prefix) and start coturn in it."""
    from callops.orchestrator.lab.lifecycle import lab_up
    from callops.orchestrator.lab.topology import check_prefix, check_topology

    agent = check_topology(agent_topology or topology or "cone", site="agent")
    consumer = check_topology(consumer_topology or topology or "cone", site="consumer")
    state = lab_up(agent, consumer, prefix=check_prefix(prefix))
    if as_json:
        click.echo(state.model_dump_json(indent=2))
        return
    click.echo(f"lab {prefix!r} up: agent={agent} consumer={consumer}")
    click.echo(f"  TURN host   {', '.join(state.turn_addresses)} (udp/tcp {state.turn_port}, tls 443)")
    for role in ("agent", "consumer"):
        click.echo(f"  {role:<11} {state.hosts[role]} in {state.namespaces[role]}")
    click.echo(f"  probe:  callops lab exec consumer -- callops probe --config {state.config_file}")


@lab.command()
@_prefix_option
def down(prefix: str) -> None:
    """Remove everything the lab created (also leftovers of a crashed run)."""
    from callops.orchestrator.lab.lifecycle import lab_down
    from callops.orchestrator.lab.topology import check_prefix

    removed = lab_down(check_prefix(prefix))
    click.echo(f"removed {len(removed)} namespaces" + (f": {' '.join(removed)}" if removed else ""))


@lab.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@_prefix_option
def status(as_json: bool, prefix: str) -> None:
    """Show whether the lab is up, its topologies, namespaces and coturn."""
    from callops.orchestrator.lab.lifecycle import lab_status

    st = lab_status(prefix)
    if as_json:
        click.echo(st.model_dump_json(indent=2))
        return
    if st.state is None:
        click.echo(
            f"lab {prefix!r}: down" + (f" (leftover: {' '.join(st.namespaces)})" if st.namespaces else "")
        )
        return
    s = st.state
    click.echo(f"lab {prefix!r}: {'up' if st.up else 'degraded'}; agent={s.agent} consumer={s.consumer}")
    click.echo(f"  coturn {'running' if st.coturn_running else 'NOT running'} (pid {s.coturn_pid})")
    for role, ns in s.namespaces.items():
        present = "" if ns in st.namespaces else "  MISSING"
        click.echo(f"  {role:<16} {ns:<15} {s.hosts.get(role, '')}{present}")
    click.echo(f"  config {s.config_file}")


@lab.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@_prefix_option
def exec_(host: str, command: tuple[str, ...], prefix: str) -> None:
    """Run COMMAND on HOST (agent, consumer, turn, inet, agent-router, consumer-router)."""
    from callops.errors import EnvironmentProblem
    from callops.orchestrator.lab.lifecycle import lab_exec_argv

    argv = lab_exec_argv(host, list(command), prefix=prefix)
    sys.stdout.flush()
    sys.stderr.flush()
    # Become the command: its exit code is ours and a signal to us reaches it (no orphan left running).
    try:
        os.execvp(argv[0], argv)  # noqa: S606 -- argv is ["ip", "netns", "exec", NS, *the user command]
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run {argv[0]!r}: {exc.strerror}") from None


__all__ = ["lab"]
