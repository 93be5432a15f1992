"""Access log: who read whose personal data (admin)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["privacy"])
