"""The base of every config section: unknown keys are errors, and assignments are validated too."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A typed settings section of ``HyperrecConfig`` (a typo in YAML, env or --set fails instead of
    vanishing)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
