"""export component."""

from hyperrec.components.export.component import export

__all__ = ["export"]
