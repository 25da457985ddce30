"""The training pipeline: data prep → baselines and fine-tuning → evaluation → export → gate and register,
then (with ``deploy.enabled``, only when the gate registered a version) deploy it to KServe."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Model

from hyperrec.components.data_prep import data_prep
from hyperrec.components.deploy import deploy
from hyperrec.components.evaluate import evaluate
from hyperrec.components.export import export
from hyperrec.components.fine_tune import fine_tune
from hyperrec.components.train_baselines import train_baselines
from hyperrec.components.validate_and_register import validate_and_register
from hyperrec.config import HyperrecConfig
from hyperrec.pipelines.scheduling import request_gpu

PIPELINE_NAME = "hyperrec-training"


class TrainingOutputs(NamedTuple):
    prepared: Dataset
    models: Model
    lm_models: Model
    evaluation: Artifact
    bundle: Model
    registration: str


def build_training_pipeline(cfg: HyperrecConfig):
    """Return the pipeline function, with the image and GPU scheduling taken from ``cfg.cluster``.

    The config travels as one JSON parameter whose default is ``cfg`` itself, so the compiled pipeline runs
    as configured and a KFP UI user can still paste a different config (JSON or YAML) into the run form.

    Args:
        cfg: the configuration; its JSON is the ``config_yaml`` default, and it sets images, scheduling and
            whether the deploy task is added.
    """

    @dsl.pipeline(name=PIPELINE_NAME, description="Prepare data, fine-tune recommenders, evaluate, register.")
    def training(config_yaml: str = cfg.to_json(), pipeline_run: str = "manual") -> TrainingOutputs:
        """Train, evaluate and register; deploy the registered version when ``deploy.enabled``.

        Args:
            config_yaml: the full HyperrecConfig as YAML or JSON.
            pipeline_run: the pipeline run id.

        Returns:
            The artifacts of every stage and the registration result.
        """
        tasks = train_and_register(cfg, config_yaml=config_yaml, pipeline_run=pipeline_run)
        if cfg.deploy.enabled:
            deploy_if_registered(cfg, tasks["gate"], config_yaml=config_yaml)
        return TrainingOutputs(
            prepared=tasks["prep"].outputs["prepared"],
            models=tasks["baselines"].outputs["models"],
            lm_models=tasks["tuned"].outputs["models"],
            evaluation=tasks["scored"].outputs["evaluation"],
            bundle=tasks["bundle"].outputs["bundle"],
            registration=tasks["gate"].outputs["registration"],
        )

    return training


def train_and_register(cfg: HyperrecConfig, *, config_yaml, pipeline_run, data_window="{}") -> dict:
    """The tasks shared by training and retraining: data prep → baselines and fine-tuning → evaluation →
    export → gate and register. Call inside a pipeline function; returns the tasks by role.

    Args:
        cfg: the configuration (GPU request, cluster scheduling, ``modeling.serve`` as the challenger).
        config_yaml: the pipeline's config parameter.
        pipeline_run: the pipeline's run-id parameter.
        data_window: the event time window for data prep, as JSON.

    Returns:
        Role (prep, baselines, tuned, scored, bundle, gate) -> task.
    """
    common = {"config_yaml": config_yaml, "pipeline_run": pipeline_run}
    prep = data_prep(**common, data_window=data_window).set_display_name("data prep")
    prepared = prep.outputs["prepared"]
    baselines = train_baselines(**common, prepared=prepared).set_display_name("train baselines")
    tuned = fine_tune(**common, prepared=prepared).set_display_name("fine-tune language models")
    request_gpu(tuned, cfg.cluster.gpu)
    scored = evaluate(
        **common, prepared=prepared, models=baselines.outputs["models"], lm_models=tuned.outputs["models"]
    ).set_display_name("evaluate")
    bundle = export(**common, prepared=prepared, models=tuned.outputs["models"]).set_display_name("export")
    gate = validate_and_register(
        **common, evaluation=scored.outputs["evaluation"], bundle=bundle.outputs["bundle"],
        challenger=cfg.modeling.serve,
    ).set_display_name("validate and register")
    tasks = {
        "prep": prep,
        "baselines": baselines,
        "tuned": tuned,
        "scored": scored,
        "bundle": bundle,
        "gate": gate,
    }
    for task in tasks.values():
        on_cluster(task, cfg)
    return tasks


def deploy_if_registered(cfg: HyperrecConfig, gate: dsl.PipelineTask, *, config_yaml) -> None:
    """The deploy step, behind the gate: it runs only when ``gate`` registered a version.

    Whether the step exists at all is decided when compiling (``deploy.enabled``), so embedded runs and
    clusters without KServe compile without it; the step also re-reads ``deploy.enabled`` from the run's
    config.
    """
    with dsl.If(gate.outputs["registered"] == True, name="gate-registered"):  # noqa: E712 - KFP syntax
        on_cluster(
            deploy(config_yaml=config_yaml, registration=gate.outputs["registration"]), cfg,
        ).set_display_name("deploy to KServe")


def on_cluster(task: dsl.PipelineTask, cfg: HyperrecConfig) -> dsl.PipelineTask:
    """The hyperrec image, and no caching: every run reads fresh data and config."""
    return task.set_container_image(cfg.cluster.image).set_caching_options(False)
