"""Request and response bodies of the wallet's router of the JSON API, and how a wallet becomes one.

Money leaves as a decimal string with two places, never a float; amounts a client sends must be
decimal strings too.
"""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import Field, WithJsonSchema

from billing.selectors import WalletSummary
from passline.api_schemas import Money, money

# The amount and card number are declared as strings (what a client must send) but reach the
# view unconverted, so that a JSON number is refused with the domain codes ``invalid_amount``
# and ``invalid_card`` rather than a generic ``invalid_request``.
AmountText = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d+(\.\d{1,2})?$",
            "examples": ["20.00"],
            "description": "Decimal string, more than 0 and at most 10000.00, at most two decimals. "
            "A JSON number is refused (422 `invalid_amount`).",
        }
    ),
]
CardText = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "string",
            "examples": ["4242 4242 4242 4242"],
            "description": "12 to 19 digits; spaces and dashes are ignored. Test cards: 4242424242424242 succeeds, "
            "4000000000000002 is declined.",
        }
    ),
]


class WalletOut(Schema):
    balance: Money
    currency: str = Field(examples=["EUR"], description="ISO 4217 code; one currency per deployment.")


class TopUpIn(Schema):
    amount: AmountText
    card_number: CardText


class TopUpIntentIn(Schema):
    amount: AmountText


class TopUpIntentOut(Schema):
    top_up_id: int
    status: str = Field(
        examples=["pending"],
        description="`pending` until the customer confirms the payment on the provider's page, then "
        "`succeeded` (the wallet is credited) or `declined` (nothing changed; the same confirmation page may "
        "still be paid with another card).",
    )
    amount: Money
    currency: str = Field(examples=["EUR"])
    intent_id: str | None = Field(description="The payment provider's id of the payment intent.")
    confirmation_url: str | None = Field(
        description="The provider's page where the customer enters the card; open it in a browser. "
        "Null once the top-up has succeeded."
    )
    client_secret: str | None = Field(
        description="Lets the customer's browser confirm the intent with the provider's own client library; "
        "give it to nobody else. Null once the top-up has succeeded."
    )
    decline_reason: str = Field(description="Why the last attempt failed, when it did.")
    ledger_entry_id: int | None = Field(description="The ledger entry that credited the wallet, once it did.")
    balance: Money = Field(description="The wallet's balance now.")


class TopUpOut(WalletOut):
    top_up_id: int
    ledger_entry_id: int = Field(description="The ledger entry that credited the wallet.")
    amount: Money = Field(description="What this top-up added.")
    card_last4: str


def wallet_out(summary: WalletSummary) -> dict[str, Any]:
    return {"balance": money(summary.balance), "currency": summary.currency}


class CardPaymentOut(Schema):
    order_id: int
    intent_id: str = Field(description="The payment provider's id of the order's payment intent.")
    confirmation_url: str = Field(
        description="The provider's page where the customer enters the card for exactly the order's total; open "
        "it in a browser. The order turns `paid` (or `payment_failed`) when the provider's webhook arrives."
    )
    amount: Money
    currency: str = Field(examples=["EUR"])
