"""Privacy: erasure (``hyperrec forget``), retention, consent and the audit log (docs/PRIVACY.md)."""
