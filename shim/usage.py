"""Help text for kubetray-shim (only imported for --help)."""

import sys

USAGE = """\
usage: kubetray-shim get-token [kubelogin flags]

The kubectl exec credential plugin of kubetray. It asks the kubetray daemon for a token and prints an
ExecCredential; the daemon signs you in once and refreshes tokens ahead of time.

It accepts Azure kubelogin's get-token flags, so an existing kubeconfig switches by changing only
`command:`:
  -l, --login MODE                interactive (default), devicecode, spn, msi, workloadidentity,
                                  azurecli, azd, azurepipelines, or ropc (deprecated: no MFA or
                                  Conditional Access)
      --server-id ID              the AKS server application id (the token's audience)
      --client-id ID              the public client application id
  -t, --tenant-id ID              the Entra tenant
  -e, --environment NAME          AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud
      --authority-host URL        sign in at URL/<tenant> instead
      --disable-instance-discovery
      --timeout DURATION          how long a sign-in may take (e.g. 60s, 5m)
      --login-hint UPN            the account to pick
      --redirect-url URL          loopback redirect for the browser sign-in (http://localhost:PORT)
      --client-secret, --client-certificate FILE, --client-certificate-password   (spn)
      --username, --password      (ropc)
      --identity-resource-id ID   (msi)
      --federated-token-file FILE (workloadidentity)
      --subscription ID           (azurecli)
      --azure-pipelines-service-connection-id ID   (azurepipelines; with SYSTEM_ACCESSTOKEN and
                                  SYSTEM_OIDCREQUESTURI from the pipeline step's environment)
      --use-azurerm-env-vars      take the service principal from ARM_* (Terraform's names)
      --local-only                kubetray: never serve this profile to an ssh-forwarded caller
      --use-os-broker             sign in through the OS's broker (Windows, macOS)
      --disable-environment-override   ignore AAD_*/AZURE_* variables
It also accepts int128/kubelogin's OpenID Connect flags (--oidc-issuer-url, --oidc-client-id, ...).

Example kubeconfig user:
  exec:
    apiVersion: client.authentication.k8s.io/v1
    command: /absolute/path/to/kubetray-shim
    args: [get-token, --login, interactive, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630,
           --client-id, 80faf920-1908-4b52-b5ef-a8e7bedfc67a, --tenant-id, <tenant>]
    interactiveMode: IfAvailable
"""


def show(argv: "list[str]") -> int:
    if argv and argv[0] in ("--version", "version"):
        from importlib import metadata

        try:
            print("kubetray-shim", metadata.version("kubetray"))
        except metadata.PackageNotFoundError:
            print("kubetray-shim (not installed)")
        return 0
    sys.stdout.write(USAGE)
    return 0
