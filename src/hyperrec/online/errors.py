"""Typed errors of the online runtime; servers map them to HTTP codes (InvalidRequest → 400, NotReady →
503)."""

from __future__ import annotations

from hyperrec.errors import HyperrecError


class InvalidRequest(HyperrecError):
    """The client sent something that cannot be answered; the message says what to fix (a 400)."""


class UnknownModel(InvalidRequest):
    """The request names a model this server does not serve."""


class NotReady(HyperrecError):
    """The bundle is still loading (a 503: retry later)."""


class PredictorUnavailable(HyperrecError):
    """The predictor failed, timed out or answered something unusable; callers fall back (degraded)."""
