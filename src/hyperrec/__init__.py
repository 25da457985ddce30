"""hyperrec."""
