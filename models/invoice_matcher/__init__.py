"""Transfer-to-invoice matcher for a finance team: a (bank transfer, invoice) pair in, match probability out."""
