"""SMS and MMS through Twilio: incoming-message and status-callback webhooks, outbound through
the twilio library's REST client.

Twilio signs every webhook (``X-Twilio-Signature``) over the URL it called and the form fields it
posted; both hooks verify that before anything is read (``signature``), then ``webhooks`` reads
the message or status. Twilio's Messages API takes no idempotency key, so a send whose answer
was lost is reconciled from its status callback, whose URL carries the hub's ``message_id``
(``sending``). ``connector`` is the connector itself.
"""

from __future__ import annotations

from hub.connectors.settings import TwilioSettings
from hub.connectors.twilio.connector import TwilioConnector
from hub.connectors.twilio.webhooks import EMPTY_TWIML

__all__ = ["EMPTY_TWIML", "TwilioConnector", "TwilioSettings"]
