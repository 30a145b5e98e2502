"""What every router of the JSON API shares: the error body, the answers an operation
documents, the idempotency headers, and money.

The routers (``ordering.api``, ``ordering.kitchen_api``, ``billing.api``) import this module and
``passline.api`` assembles them, so nothing here imports a router.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field

MONEY_PATTERN = r"^-?\d+\.\d{2}$"

Money = Annotated[str, Field(pattern=MONEY_PATTERN, examples=["12.50"], description="Decimal string, two places.")]


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


# --- errors ---------------------------------------------------------------------------


class ErrorBody(Schema):
    code: str = Field(examples=["invalid_request"], description="Machine-readable; stable across releases.")
    message: str = Field(description="For humans; may change.")
    field: str | None = Field(None, description="The input field at fault, when there is one.")
    details: Any = Field(None, description="Extra facts, e.g. the failing fields of a validation error.")


class ErrorOut(Schema):
    error: ErrorBody


# --- the answers of each operation, for the schema -------------------------------------

# The errors an operation can answer, each status with the machine codes it carries: every
# status is declared with the error shape and this text (and every operation may answer 503).
AUTH_ERRORS = {
    401: "`not_authenticated`: no valid bearer token (or browser session).",
    403: "`forbidden`: not allowed for this account; `csrf_failed`: a session request without `X-CSRFToken`.",
}
INVALID_REQUEST = (
    "`invalid_request` (with `field` and `details`): the body does not match the schema: a field "
    "missing, of the wrong type, out of range or too long, text with NUL characters or invalid "
    "Unicode, a body that is not a JSON object."
)
BODY_ERRORS = {
    400: "`malformed_json`: the body is not valid JSON.",
    413: "`payload_too_large`: the body is over the upload limit.",
    415: "`unsupported_media_type`: the body is not sent as `application/json`.",
    422: INVALID_REQUEST,
}
UNAVAILABLE = (
    "`unavailable`: the database was briefly unavailable and nothing was changed; retry after "
    "`Retry-After` seconds (a POST with the same `Idempotency-Key`, which is safe)."
)
RATE_LIMITED = (
    "`rate_limited`: too many requests from this account or address; retry after `Retry-After` "
    "seconds. Nothing was done."
)
IDEMPOTENCY_KEY_422 = "`invalid_idempotency_key`: the `Idempotency-Key` header is not 1 to 255 characters."


def answers(success: dict[int, Any], errors: dict[int, str], **openapi_extra: Any) -> dict[str, Any]:
    """``response`` and ``openapi_extra`` of an operation: its success, its errors in the error
    shape with the codes each carries, and the 429 and 503 every operation may answer."""
    # An operation's own 503 (a provider that is down) adds to the one every operation has.
    errors = {429: RATE_LIMITED, **errors, 503: " ".join(filter(None, [UNAVAILABLE, errors.get(503)]))}
    documented: dict[int, Any] = {status: {"description": text} for status, text in errors.items()}
    for status in (429, 503):
        documented[status]["headers"] = {
            "Retry-After": {"description": "Seconds to wait before a retry.", "schema": {"type": "integer"}}
        }
    return {
        "response": {**success, **dict.fromkeys(errors, ErrorOut)},
        "openapi_extra": {"responses": documented, **openapi_extra},
    }


def idempotency_key(what: str) -> dict[str, Any]:
    return {
        "in": "header",
        "name": IDEMPOTENCY_HEADER,
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": f"A unique key per intended {what}, e.g. a UUID.",
    }
