"""Microsoft Entra ID login, as the Resource Manager emulator (``azure_arm``) serves it.

Enough for a real ``azure.identity.ClientSecretCredential(authority=url, disable_instance_discovery=True,
connection_verify=ca_path)``, written from the Microsoft identity platform's OAuth 2.0 client credentials
reference:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration``: the OpenID metadata naming the token endpoint
  on this server.
- ``POST /{tenant}/oauth2/v2.0/token`` (form ``grant_type=client_credentials``, ``client_id``,
  ``client_secret``): 200 ``{"token_type": "Bearer", "expires_in", "access_token"}``; 400
  ``unsupported_grant_type`` for any other grant, 401 ``invalid_client`` (AADSTS7000215) for a wrong
  secret of an app registered with ``add_client`` (other apps get a token with any secret).
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs

from providers.sandbox.json_server import Request, Response


class EntraLogin:
    """The login part of ``AzureArmEmulator`` (a mixin); the emulator sets ``client_secrets`` (client id ->
    secret) and ``tokens_issued`` (every access token handed out, in order)."""

    client_secrets: dict[str, str]
    tokens_issued: list[str]

    def add_client(self, client_id: str, secret: str) -> None:
        """Make the token route check this app's secret (unregistered apps get a token with any secret)."""
        self.client_secrets[client_id] = secret

    def _openid(self, request: Request, tenant: str) -> Response:
        base = f"{request.base_url}/{tenant}"
        return Response(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                              "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                              "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                              "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
                              "tenant_region_scope": "NA", "response_types_supported": ["code", "token"],
                              "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"]})

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        client, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: only "
                                  "client_credentials is emulated", "error_codes": [70003]})
        if not client or not secret or self.client_secrets.get(client, secret) != secret:
            return Response(401, {"error": "invalid_client", "error_codes": [7000215],
                                  "error_description": "AADSTS7000215: Invalid client secret provided."})
        token = f"emulated-{uuid.uuid4().hex}"
        self.tokens_issued.append(token)
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": token})
