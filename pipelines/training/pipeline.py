"""The training pipeline: data prep → classical baselines → evaluation under both protocols."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Model

from hyperrec.components.data_prep import data_prep
from hyperrec.components.evaluate import evaluate
from hyperrec.components.train_baselines import train_baselines
from hyperrec.config import HyperrecConfig
from hyperrec.pipelines.scheduling import request_gpu

PIPELINE_NAME = "hyperrec-training"


class TrainingOutputs(NamedTuple):
    prepared: Dataset
    models: Model
    evaluation: Artifact


def build_training_pipeline(cfg: HyperrecConfig):
    """Return the pipeline function, with the image and GPU scheduling taken from ``cfg.cluster``.

    The config travels as one YAML parameter whose default is ``cfg`` itself, so the compiled pipeline
    runs as configured and a KFP UI user can still paste a different config into the run form.
    """

    @dsl.pipeline(name=PIPELINE_NAME, description="Prepare data, train recommenders and evaluate them.")
    def training(config_yaml: str = cfg.to_json(), pipeline_run: str = "manual") -> TrainingOutputs:
        prep = data_prep(config_yaml=config_yaml, pipeline_run=pipeline_run).set_display_name("data prep")
        train = train_baselines(
            config_yaml=config_yaml, pipeline_run=pipeline_run, prepared=prep.outputs["prepared"]
        ).set_display_name("train baselines")
        request_gpu(train, cfg.cluster.gpu)
        scored = evaluate(
            config_yaml=config_yaml,
            pipeline_run=pipeline_run,
            prepared=prep.outputs["prepared"],
            models=train.outputs["models"],
        ).set_display_name("evaluate")
        for task in (prep, train, scored):
            task.set_container_image(cfg.cluster.image)
            task.set_caching_options(False)
        return TrainingOutputs(
            prepared=prep.outputs["prepared"],
            models=train.outputs["models"],
            evaluation=scored.outputs["evaluation"],
        )

    return training
