"""The daemon as an OS process: paths, logging, hardening, the shim launcher."""
