"""Integration tests use the rig too: the real daemon process and the real Secret Service."""

from tests.support.rig_fixtures import authority, bundle, ca, rig, scripted_browser  # noqa: F401
