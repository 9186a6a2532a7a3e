"""``kubetray demo``: a local sign-in authority and API server, so the whole flow runs with nothing to set up.

Self-contained (standard library, cryptography and pyjwt): the test stand-ins under tests/ are not
part of the installed package.
"""
