"""What the REST app asks of the recommend transformer beyond KServe's model API (issue 11, findings 1, 5,
10): its served version, its predictors' readiness, its catalogue, and the ``:explain`` verb (which the
feedback model refuses with a 400 rather than KServe's call to a missing explainer)."""

from __future__ import annotations

import dataclasses
from typing import Any

from kserve.errors import InvalidInput

from .revisions import Revision


class ServedRevisions:
    """Mixin of ``RecommendTransformer`` over its loaded revisions (``_revisions``, the champion first)."""

    _revisions: list[Revision]

    @property
    def served_version(self) -> str | None:
        """The champion bundle's version (V2 ``model_version``); None until loaded."""
        return self._revisions[0].service.model_version if self._revisions else None

    async def predictor_ready(self) -> bool:
        """Whether every revision's predictor answers its readiness probe (a client without one: True)."""
        for revision in self._revisions:
            probe = getattr(revision.scorer, "is_ready", None)
            if probe is not None and not await probe():
                return False
        return True

    def knows_item(self, item_id: str) -> bool:
        """Whether any revision's catalogue holds ``item_id`` (the feedback model's check)."""
        return any(item_id in revision.service.catalogue.index for revision in self._revisions)

    async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """``:explain`` (between preprocess and postprocess): the ``:predict`` answer with every reason."""
        request = dataclasses.replace(payload.plan.request, explain=True)
        return dataclasses.replace(payload, plan=dataclasses.replace(payload.plan, request=request))


class NoExplanation:
    """Mixin of a model without ``:explain``: a 400 naming the verb to use."""

    name: str

    async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        raise InvalidInput(f"{self.name} has no explanation: POST /v1/models/{self.name}:predict")
