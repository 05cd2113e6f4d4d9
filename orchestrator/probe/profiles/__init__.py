"""Built-in readiness profiles (YAML, shipped as package data): ``callops probe --profile NAME``."""
