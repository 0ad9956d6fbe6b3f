"""SMART Backend Services: OAuth 2.0 access tokens for registered backend clients (HL7 SMART App Launch 2).

Besides API keys, the REST and FHIR endpoints take ``Authorization: Bearer <access token>``. A
client (an app that registered a public JWKS) gets a token from ``POST /oauth/token`` with the
``client_credentials`` grant, authenticating with a JWT it signs with its private key
(``private_key_jwt``, RS384 or ES384), and asks for SMART ``system/*`` scopes, which stand for the
ledger's roles. The SQL lives in :mod:`ledger.store.oauth`.

* :mod:`~ledger.oauth.scopes`: the scopes offered, the role each stands for, granting.
* :mod:`~ledger.oauth.client_keys`: what a registered JWKS may hold (public RS384/ES384 keys only).
* :mod:`~ledger.oauth.clients`: registering an app's keys, its ``client_id``.
* :mod:`~ledger.oauth.assertions`: verifying a client assertion (signature, claims, clock skew).
* :mod:`~ledger.oauth.token_endpoint`: the token request's pipeline, from form to issued token.
* :mod:`~ledger.oauth.access_tokens`: the token format, its lifetime, and resolving a bearer token.
* :mod:`~ledger.oauth.discovery`: ``/.well-known/smart-configuration`` and the token endpoint's URL.
"""
