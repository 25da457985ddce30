"""Data preparation: read, validate, quarantine, clean, pseudonymize, split, profile, segment."""
