"""Data rights: erasure of a customer (GDPR art. 17)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["privacy"])
