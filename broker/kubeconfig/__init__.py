"""Reading, converting and restoring kubeconfig files (ruamel.yaml round-trip: comments and order kept)."""
