"""Ranking metrics, evaluation protocols and the harness that writes metrics.json."""
