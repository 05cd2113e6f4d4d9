"""The consumer side: Messaging Window API models, the invitation tracker, lpTag payloads, the client."""
