"""Twilio's webhook signature: ``X-Twilio-Signature`` over the URL Twilio called and, for a
POST, its sorted form fields, with the account's auth token or a Webhook Rule's SharedKey. A
request's fields are read only once it verifies."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import (  # type: ignore[import-untyped]
    HMAC_SHA1,
    RequestValidator,
    get_signature_algorithm,
)

from hub.connectors.base import InvalidSignature, MalformedPayload, WebhookRequest
from hub.connectors.settings import TwilioSettings
from hub.events.common import scrub_text

_MAX_FIELDS = 1000


class _Form(dict[str, list[str]]):
    """Form fields with every value of a repeated name, as RequestValidator reads a MultiDict."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def verified_fields(request: WebhookRequest, settings: TwilioSettings) -> dict[str, str]:
    """The request's fields, once its signature verifies (form body of a POST, query of a
    GET; Twilio signs the URL and, for a POST, the sorted form fields)."""
    is_get = request.method.upper() == "GET"
    if is_get:
        source = urlsplit(request.url).query
    else:
        source = request.body.decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(source, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError as exc:
        raise MalformedPayload(f"not a form body: {exc}") from None
    # The fields of a GET are part of the signed URL already.
    signed = [] if is_get else pairs

    signature = request.headers.get("x-twilio-signature")
    if not signature:
        raise InvalidSignature("no X-Twilio-Signature header", status=401)
    signing = request.headers.get("x-twilio-webhooks-signature-settings")
    if signing:
        # A Webhook Rule signs with a SharedKey (and maybe SHA-256) instead of the token.
        if settings.webhook_signing_secret is None:
            raise InvalidSignature(
                "signed with a Webhooks SharedKey, but webhook_signing_secret is not set",
                status=403,
            )
        secret = settings.webhook_signing_secret.get_secret_value()
        algorithm = get_signature_algorithm(signing)
    else:
        if settings.auth_token is None:
            raise InvalidSignature("twilio has no auth_token to verify with", status=403)
        secret = settings.auth_token.get_secret_value()
        algorithm = HMAC_SHA1
    form = _Form()
    for key, value in signed:
        form.setdefault(key, []).append(value)
    validator = RequestValidator(secret)
    # The URL as the hub builds it first: one HMAC, where validate() always computes two
    # (the URL with and without its default port, as Twilio's signing of either varies).
    # Only a request signed for neither the one nor the others is refused. The first
    # comparison is the standard library's constant-time one (the library's loops in Python).
    try:
        computed = validator.compute_signature(request.url, form, algorithm)
        exact = hmac.compare_digest(computed.encode(), signature.encode())
    except ValueError:  # an algorithm this twilio release does not know: validate() says
        exact = False
    if not exact and not validator.validate(request.url, form, signature, algorithm):
        raise InvalidSignature("X-Twilio-Signature does not match", status=403)
    # A repeated name keeps its first value: Twilio sends none for messaging.
    fields: dict[str, str] = {}
    for key, value in pairs:
        # Signed and sent, so kept: a NUL (%00) becomes U+FFFD rather than a lost message.
        fields.setdefault(key, scrub_text(value))
    return fields
