"""OIDC sign-in, the pure parts: which claims make which principal, and that the ID token checks
the console gives authlib refuse a wrong issuer, audience, nonce, expiry or signature."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import RSAKey

from beacon.console.access import Role
from beacon.console.oidc import CLIENT, ClaimsRefused, id_token_checks, make_oauth, principal_from_claims
from beacon.console.settings import ConsoleSettings
from beacon.runtime.settings import SettingsError, load_settings

ISSUER = "https://login.example/tenant/v2.0"
SETTINGS = ConsoleSettings(
    console_session_secret=secrets.token_hex(32),
    console_oidc_issuer=ISSUER,
    console_oidc_client_id="beacon-console",
    console_oidc_client_secret="client-secret-0123456789",
    console_oidc_organisations_claim="groups",
    console_oidc_role_claim="roles",
)


def test_organisations_and_the_highest_role_come_from_the_configured_claims():
    principal = principal_from_claims(
        {
            "sub": "x1",
            "preferred_username": "jo.duty",
            "groups": ["lambeth", "Not A Slug"],
            "roles": ["viewer", "responder", "other"],
        },
        SETTINGS,
    )
    assert (principal.name, principal.organisations, principal.role) == (
        "jo.duty",
        frozenset({"lambeth"}),
        Role.responder,
    )
    spaced = principal_from_claims({"sub": "x2", "groups": "lambeth met-police"}, SETTINGS)
    assert spaced.organisations == {"lambeth", "met-police"} and spaced.role is Role.viewer and spaced.name == "x2"


@given(
    st.one_of(
        st.none(),
        st.just([]),
        st.just(""),
        st.lists(st.text(max_size=5).filter(lambda t: " " in t or t.upper() == t and t)),
    )
)
def test_a_token_without_an_organisation_is_refused(groups):
    claims = {"sub": "x1", "roles": ["admin"], **({"groups": groups} if groups is not None else {})}
    with pytest.raises(ClaimsRefused, match="no Beacon organisation"):
        principal_from_claims(claims, SETTINGS)


def test_an_issuer_needs_a_client_id_and_secret(monkeypatch):
    monkeypatch.setenv("BEACON_CONSOLE_SESSION_SECRET", secrets.token_hex(32))
    monkeypatch.setenv("BEACON_CONSOLE_OIDC_ISSUER", ISSUER)
    with pytest.raises(SettingsError, match="BEACON_CONSOLE_OIDC_CLIENT_SECRET"):
        load_settings(ConsoleSettings)


KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})  # same kid, not the IdP's


def _id_token(key: RSAKey = KEY, **overrides: object) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "beacon-console", "sub": "x1", "nonce": "n-1", "iat": now, "exp": now + 300}
    claims.update(overrides)
    return jwt.encode({"alg": "RS256", "kid": "k1"}, {k: v for k, v in claims.items() if v is not None}, key)


def _parse(id_token: str, nonce: str = "n-1"):  # type: ignore[no-untyped-def]
    oauth = make_oauth(SETTINGS)
    assert oauth is not None
    client = oauth.create_client(CLIENT)
    # The provider's discovery document and keys, as the console would have fetched them.
    client.server_metadata = {
        "issuer": ISSUER,
        "jwks": {"keys": [KEY.as_dict(private=False)]},
        "id_token_signing_alg_values_supported": ["RS256"],
        "_loaded_at": time.time(),
    }
    token = {"id_token": id_token, "access_token": "at"}
    return asyncio.run(client.parse_id_token(token, nonce=nonce, claims_options=id_token_checks(SETTINGS)))


def test_a_valid_id_token_is_accepted():
    assert _parse(_id_token())["sub"] == "x1"


@pytest.mark.parametrize(
    ("bad", "refusal"),
    [
        ({"iss": "https://evil.example/"}, "Invalid claim: 'iss'"),
        ({"iss": ISSUER + "/"}, "Invalid claim: 'iss'"),
        ({"iss": None}, "Missing claim: 'iss'"),
        ({"aud": "another-app"}, "claim: 'a"),  # authlib: aud without our client id, then azp missing
        ({"nonce": "n-2"}, "Invalid claim: 'nonce'"),
        ({"nonce": None}, "Missing claim: 'nonce'"),
        ({"exp": int(time.time()) - 3600}, "expired"),
    ],
    ids=["issuer", "issuer-slash", "no-issuer", "audience", "nonce", "no-nonce", "expired"],
)
def test_wrong_claims_are_refused(bad, refusal):
    with pytest.raises(JoseError, match=refusal):
        _parse(_id_token(**bad))


def test_a_token_not_signed_by_the_providers_key_is_refused():
    with pytest.raises(BadSignatureError):
        _parse(_id_token(OTHER_KEY))
