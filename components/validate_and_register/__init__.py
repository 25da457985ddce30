"""validate_and_register component."""

from hyperrec.components.validate_and_register.component import validate_and_register

__all__ = ["validate_and_register"]
