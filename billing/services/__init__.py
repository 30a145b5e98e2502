"""Every write of billing: wallets and their ledger, top-ups, order payments and refunds."""
