"""The Idempotency-Key header, defined once for the platform.

HTTP clients send `Idempotency-Key`; the bridge forwards it as the `idempotency-key`
metadata entry; svc_order stores it in the account item, which is why it is bounded.
The bridge's check, svc_order's check and the OpenAPI document all read these names.
"""

from __future__ import annotations

import re

METADATA_KEY = "idempotency-key"
HTTP_HEADER = "Idempotency-Key"
MAX_LENGTH = 128
# Visible ASCII (no space, no control character), 1 to MAX_LENGTH of them.
PATTERN = rf"[\x21-\x7e]{{1,{MAX_LENGTH}}}"
DESCRIPTION = f"1 to {MAX_LENGTH} visible ASCII characters"
_KEY = re.compile(PATTERN)


def is_valid_key(raw: str) -> bool:
    return _KEY.fullmatch(raw) is not None
