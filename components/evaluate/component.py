"""Score every trained model under both protocols and write metrics.json and recommendations.jsonl."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def evaluate(
    config_yaml: str,
    pipeline_run: str,
    prepared: Input[Dataset],
    models: Input[Model],
    lm_models: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    table: Output[Markdown],
):
    """Evaluate every model folder in ``models`` and ``lm_models`` on the test split (headline numbers go to
    KFP Metrics).

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON.
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        prepared: the prepared-data folder.
        models: the baselines' folder.
        lm_models: the language models' folder.
        evaluation: the evaluation folder: metrics.json, recommendations, fairness report (output).
        metrics: the headline metrics (output).
        table: metrics.md, plus fairness.md when the audit is on (output).
    """
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.steps.evaluate import evaluate_step, headline_metrics

    configure_logging()
    result = evaluate_step(
        config_from_yaml(config_yaml), pipeline_run, Path(prepared.path),
        [Path(models.path), Path(lm_models.path)], Path(evaluation.path),
    )
    for name, value in headline_metrics(result).items():
        metrics.log_metric(name, value)
    text = (Path(evaluation.path) / "metrics.md").read_text(encoding="utf-8")
    audit = Path(evaluation.path) / "fairness.md"  # written when fairness.audit is on
    if audit.exists():
        text += "\n## Fairness audit\n\n" + audit.read_text(encoding="utf-8")
    Path(table.path).write_text(text)
