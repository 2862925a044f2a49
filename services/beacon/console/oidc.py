"""OpenID Connect sign-in (e.g. Microsoft Entra ID): authorization code flow with PKCE.

authlib does the protocol: ``state`` (kept in the signed session cookie, checked on the way
back), the PKCE verifier (S256), the code exchange, and the ID token's signature (the
provider's JWKS), ``iss`` (the discovered issuer), ``aud`` (our client id), ``exp`` and
``nonce``. What Beacon decides is pure and here: which claims give the organisations and the
role (claim names are settings), and a token without an organisation is refused.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from beacon.console.access import Principal, Role
from beacon.console.settings import ConsoleSettings

if TYPE_CHECKING:
    from authlib.integrations.starlette_client import OAuth

_ORG = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
CLIENT = "beacon"


class ClaimsRefused(ValueError):
    """The token is valid but does not say enough to let the person in; the reason is for them."""


def _values(claim: object) -> list[str]:
    if isinstance(claim, str):
        return claim.replace(",", " ").split()
    if isinstance(claim, list | tuple):
        return [v for v in claim if isinstance(v, str)]
    return []


def principal_from_claims(claims: Mapping[str, Any], settings: ConsoleSettings) -> Principal:
    """The console principal an ID token's claims describe. Organisations: the configured claim,
    a list or a space/comma-separated string of organisation slugs (anything else in it is
    ignored). Role: the highest known role among the role claim's values (Entra ID app roles
    are a list); none known is a viewer. No organisation: refused, the person would see nothing."""
    name = claims.get(settings.console_oidc_name_claim) or claims.get("sub")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ClaimsRefused(f"the sign-in did not give a usable user name (claim {settings.console_oidc_name_claim})")
    organisations = frozenset(
        o for o in _values(claims.get(settings.console_oidc_organisations_claim)) if _ORG.match(o)
    )
    if not organisations:
        raise ClaimsRefused(
            f"your account has no Beacon organisation (claim {settings.console_oidc_organisations_claim}); "
            "ask your administrator to assign one"
        )
    roles = [Role[v] for v in _values(claims.get(settings.console_oidc_role_claim)) if v in Role.__members__]
    return Principal(name, organisations, max(roles, default=Role.viewer))


def id_token_checks(settings: ConsoleSettings) -> dict[str, Any]:
    """authlib's claims options for the ID token: the issuer is exactly the configured one (not
    only what discovery says), and a nonce is required (authlib compares it with the session's);
    ``aud`` = our client id, the signature and ``exp`` are checked by authlib always."""
    return {"iss": {"essential": True, "values": [settings.console_oidc_issuer]}, "nonce": {"essential": True}}


def make_oauth(settings: ConsoleSettings) -> OAuth | None:
    """The registered OIDC client, or None when OIDC sign-in is not configured."""
    if not settings.console_oidc_issuer:
        return None
    import authlib.deprecate  # noqa: F401 - installs authlib's own "always" filter first, so ours wins

    with warnings.catch_warnings():
        # authlib 1.9 announces at import that it will move to httpx2; a line on stderr that is
        # not JSON would break the console's one-JSON-line-per-record logs. It works on httpx 0.28.
        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from authlib.integrations.starlette_client import OAuth
    oauth = OAuth()
    oauth.register(
        CLIENT,
        client_id=settings.console_oidc_client_id,
        client_secret=settings.console_oidc_client_secret.get_secret_value(),
        server_metadata_url=settings.console_oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid", "code_challenge_method": "S256"},
    )
    return oauth
