"""Small helpers the tests share."""

from __future__ import annotations

import uuid


def unique(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
