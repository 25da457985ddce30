"""Recommenders: the shared interface and the classical baselines."""
