"""The balance worker: serves wallet commands over RPC (debit, credit, balance).

The runner hands it the commands already waiting as one batch in one transaction, each in a
savepoint of its own: a refusal (``insufficient_funds``) undoes that command alone and is its
reply, and the replies go out once the batch committed.
"""

from __future__ import annotations

from typing import Any

from billing.events import BALANCE_CREDIT, BALANCE_DEBIT, BALANCE_GET
from billing.services.wallets import wallet_balance, wallet_credit, wallet_debit
from bus.handlers import Message, RpcServer, register


def serve(message: Message) -> dict[str, Any]:
    """Debit, credit or read a wallet; idempotent by the command's key."""
    p = message.payload
    if message.event is BALANCE_GET:
        return {"user_id": p.user_id, "balance": str(wallet_balance(user_id=p.user_id))}
    move = wallet_debit if message.event is BALANCE_DEBIT else wallet_credit
    # Not isolated: the runner gives each command its own transaction (or, in a batch, its own
    # savepoint), so a refusal undoes the command alone without a savepoint of the wallet's.
    entry = move(
        user_id=p.user_id,
        amount=p.amount,
        kind=p.kind,
        key=p.key,
        description=p.description,
        order_id=p.order_id,
        isolated=False,
    )
    return {"entry_id": entry.pk, "amount": str(entry.amount), "balance": str(entry.balance_after)}


# A batch holds its wallets' row locks until it commits, so it stays small: a top-up in the
# web process waits for it. Two copies whose batches lock the same wallets in other orders
# deadlock; InnoDB ends that at once, and those batches go again one command at a time.
balance_commands = register(
    RpcServer(
        queue="balance.commands",
        events=[BALANCE_DEBIT, BALANCE_CREDIT, BALANCE_GET],
        handler=serve,
        prefetch=50,
        max_batch=50,
        quick=True,
    )
)
