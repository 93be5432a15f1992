"""Settings of the email connector (``HUB_EMAIL__...``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class EmailSettings(BaseModel):
    """``HUB_EMAIL__...``: the SMTP server to send through, the listener and the mailbox."""

    model_config = ConfigDict(frozen=True)

    from_address: str | None = Field(default=None, description="Sender, e.g. support@example.com")
    from_name: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_ca_file: str | None = Field(
        default=None,
        description="PEM bundle to verify the SMTP server's certificate with, instead of the "
        "system's (a private relay with its own CA).",
    )
    listen: str | None = Field(
        default=None, description="host:port of the built-in SMTP listener, e.g. 127.0.0.1:2525"
    )
    domains: list[str] = Field(
        default_factory=list, description="Recipient domains the SMTP listener accepts."
    )
    max_message_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    imap_url: SecretStr | None = Field(
        default=None, description="imaps://user:password@host:993/INBOX (or imap:// on loopback)"
    )
    imap_poll_seconds: float = Field(default=30.0, gt=0)
    rate_per_second: float | None = Field(default=None, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.from_address and (self.smtp_host or self.listen or self.imap_url))
