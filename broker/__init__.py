"""kubetray's broker daemon and management CLI."""

__version__ = "0.1.0"
