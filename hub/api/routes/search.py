"""(being built: issue 16, search)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
