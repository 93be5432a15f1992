"""(being built: issue 16, duplicates)"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
