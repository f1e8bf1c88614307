"""Spoke accounts: which accounts and regions Opsflow may act in, and whether it can reach them."""
