"""drift_monitor component."""

from hyperrec.components.drift_monitor.component import drift_monitor

__all__ = ["drift_monitor"]
