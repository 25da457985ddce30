"""The revisions one transformer serves: the champion always, a challenger in an embedded split.

KServe's canary runs two revisions, each with its own transformer and predictor, and splits at the ingress.
``hyperrec serve`` splits inside one transformer instead: each revision has its own bundle (catalogue,
model identity), its own ``RecommendationService`` and its own predictor client, and a ``TrafficSplit``
picks one per request. Everything a revision answers, and every metric it moves, carries its ``revision``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hyperrec.export.bundle import has_cold_outputs, verify_bundle
from hyperrec.online.catalogue import Catalogue
from hyperrec.online.service import RecommendationService
from hyperrec.online.settings import ServingConfig

from .v2_client import ScoresClient, TritonV2Client

logger = logging.getLogger(__name__)

ScorerFactory = Callable[[dict[str, Any]], ScoresClient]


@dataclass(frozen=True)
class RevisionSpec:
    """What to load for one revision."""

    name: str
    bundle_dir: Path
    #: Builds the predictor client from the bundle manifest; None: a TritonV2Client at ``settings``.
    scorer_factory: ScorerFactory | None
    #: Settings of this revision's predictor link (its ``predictor_url``).
    settings: ServingConfig
    #: MLflow registry version of the bundle when known (``hyperrec serve --registered``).
    registered_version: str | None = None


@dataclass
class Revision:
    """A loaded revision."""

    name: str
    service: RecommendationService
    scorer: ScoresClient
    registered_version: str | None


def load_revision(
    spec: RevisionSpec, settings: ServingConfig, pseudonymize: Callable[[str], str]
) -> Revision:
    """Verify and load the bundle and build the predictor client (blocking)."""
    manifest = verify_bundle(spec.bundle_dir)
    catalogue = Catalogue.from_bundle(spec.bundle_dir)
    service = RecommendationService(
        catalogue,
        model_name=str(manifest["model_name"]),
        model_version=str(manifest["version"]),
        max_history=int(manifest["max_history"]),
        settings=settings,
        pseudonymize=pseudonymize,
        revision=spec.name,
        registered_version=spec.registered_version,
    )
    if spec.scorer_factory is not None:
        scorer = spec.scorer_factory(manifest)
    else:
        scorer = TritonV2Client(spec.settings, str(manifest["model_name"]), int(manifest["n_items"]),
                                manifest.get("top_k"), cold_outputs=has_cold_outputs(manifest))
    logger.info("revision %s ready: bundle %s version %s (registry v%s), %d items, predictor %s via %s",
                spec.name, manifest["model_name"], manifest["version"], spec.registered_version or "?",
                catalogue.n_items, spec.settings.predictor_url, spec.settings.predictor_protocol)
    return Revision(spec.name, service, scorer, spec.registered_version)
