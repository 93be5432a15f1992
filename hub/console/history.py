"""(being built: issue 16, history)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
