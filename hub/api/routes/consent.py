"""Consent: the ledger per channel and purpose, unsubscribe links."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["privacy"])
