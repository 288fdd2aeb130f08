"""Where the ledger lives: one module per backend, chosen by URL."""
