"""Loopback peers that speak the providers' real protocols and payload formats: HTTP APIs
(Twilio, Meta, Telegram), SMTP and IMAP servers, and sample mail."""
