"""Delivery: the gitops/ overlays that pin model versions, promotion, the ledger, the registry bridge, status."""
