"""Export of everything the hub holds about a customer (GDPR art. 15 and 20)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["privacy"])
