"""(being built: issue 16, profile)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
