"""(being built: issue 16, segments)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
