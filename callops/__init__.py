"""callops: prove that WebRTC voice/video calls between agents and website visitors will connect.

Areas (each a subpackage, each a folder at the repository root):

- :mod:`callops.consumer` -- the consumer-side invitation handler (Messaging Window API).
- :mod:`callops.turn` -- STUN/TURN probes, credentials, coturn configuration, lint and audit.
- :mod:`callops.orchestrator` -- the API emulator, headless calls, probes, NAT lab and the CLI.
- :mod:`callops.deploy` -- coturn deployment scripts rendered from the configuration model.
"""

from callops.errors import CallopsError

__version__ = "0.1.0"

__all__ = ["CallopsError", "__version__"]
