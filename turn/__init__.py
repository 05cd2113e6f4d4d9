"""The relay side: STUN/TURN probes, TURN REST credentials, coturn configuration, lint and audit."""
