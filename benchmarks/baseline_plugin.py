"""The baseline the benchmark compares against: a typical one-shot Python exec plugin.

Every kubectl call starts it afresh: it imports msal and keyring, loads the token cache from the
keyring, builds an MSAL app (which fetches the authority's discovery document) and calls
acquire_token_silent. This is what a plugin without a daemon has to do on every call.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    import keyring
    import msal
    import requests

    authority, client_id, scope, cache_entry = sys.argv[1:5]
    cache = msal.SerializableTokenCache()
    serialized = keyring.get_password("kubetray-bench-baseline", cache_entry)
    if serialized:
        cache.deserialize(serialized)
    session = requests.Session()
    app = msal.PublicClientApplication(
        client_id, authority=authority, token_cache=cache, http_client=session, instance_discovery=False
    )
    accounts = app.get_accounts()
    result = app.acquire_token_silent([scope], accounts[0]) if accounts else None
    if not result or "access_token" not in result:
        print("baseline plugin: no token", file=sys.stderr)
        return 1
    if cache.has_state_changed:
        keyring.set_password("kubetray-bench-baseline", cache_entry, cache.serialize())
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + result["expires_in"]))
    info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO") or "{}")
    sys.stdout.write(json.dumps({
        "kind": "ExecCredential",
        "apiVersion": info.get("apiVersion", "client.authentication.k8s.io/v1beta1"),
        "status": {"token": result["access_token"], "expirationTimestamp": expiry},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
