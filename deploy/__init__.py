"""coturn deployment scripts (systemd, kubernetes, compose) rendered from the configuration model."""
