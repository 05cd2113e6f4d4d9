"""Orchestration: the Messaging Window API emulator, headless calls, probes, the NAT lab and the CLI."""
