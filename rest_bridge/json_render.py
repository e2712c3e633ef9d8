"""JSON answers with exact decimal numbers.

Decimal text that the contract marks `(trading.v1.json_number)` reaches the client as
a JSON number with exactly its digits: `transcode.response_json` turns it into a
Decimal and simplejson writes a Decimal verbatim (the standard library would need a
float, which could change the digits).
"""

from __future__ import annotations

from typing import Any

import simplejson
from starlette.responses import JSONResponse


def render_json(data: Any) -> bytes:
    return simplejson.dumps(
        data, use_decimal=True, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")


class ExactJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return render_json(content)
