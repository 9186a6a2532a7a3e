"""The client-go exec-plugin contract: both kubelogins' get-token arguments and the ExecCredential codec.

Standard library and broker.core only.
"""
