"""Publish a compiled pipeline to Kubeflow Pipelines: upload it as a new version, then start a run of it.

CI runs this on every push to main (``hyperrec pipeline publish``, .github/workflows/release.yml), so the
cluster always has a version per commit. It is a thin layer over ``kfp.Client``; what it adds is a check of
the run's parameters against the compiled IR before anything is sent (``hyperrec.pipelines.contract``, the
checker every run hyperrec starts goes through), so a typo in a parameter name fails here, not in the cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hyperrec.cli_options import add_common_options
from hyperrec.errors import ConfigError, HyperrecError
from hyperrec.pipelines.contract import ContractError, PipelineContract


@dataclass(frozen=True)
class Published:
    """What was created on the KFP API server."""

    pipeline_id: str
    version_id: str
    run_id: str


def read_contract(package: Path) -> PipelineContract:
    """The parameter contract of a compiled pipeline package (its first YAML document, the PipelineSpec)."""
    try:
        with Path(package).open(encoding="utf-8") as handle:
            spec = next(yaml.safe_load_all(handle))
    except (OSError, yaml.YAMLError, StopIteration) as exc:
        raise ConfigError(f"cannot read the compiled pipeline {package}: {exc}") from None
    if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
        raise ConfigError(f"{package} is not a compiled KFP pipeline (no pipelineInfo/root)")
    return PipelineContract.from_ir(spec)


def check_parameters(contract: PipelineContract, params: dict[str, Any]) -> None:
    """Refuse a run the compiled pipeline would not accept or could not run (``PipelineContract``): a
    parameter it does not declare, a required one left out, a wrong type, an importer without a downloadable
    URI."""
    try:
        contract.check(params, what="the run's parameters")
    except ContractError as exc:
        raise ConfigError(str(exc)) from None


def typed_parameters(contract: PipelineContract, texts: dict[str, str]) -> dict[str, Any]:
    """``--param`` values as the pipeline's input types want them: strings stay strings, the others are parsed
    as YAML (``force_retrain=true``, ``top_k=10``), so the run body carries a bool or a number, not its text.

    Args:
        contract: the compiled pipeline's contract, for the input types.
        texts: parameter name -> its ``--param`` text.

    Returns:
        Parameter name -> typed value.

    Raises:
        ConfigError: a non-string value is not valid YAML.
    """
    typed: dict[str, Any] = {}
    for name, text in texts.items():
        spec = contract.inputs.get(name)
        try:
            typed[name] = text if spec is None or spec.type == "STRING" else yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--param {name}: {text!r} is not a {spec.type} value") from None
    return typed


def publish(
    client: Any, package: Path, *, version: str, experiment: str, run_name: str,
    params: dict[str, Any] | None = None, namespace: str | None = None,
) -> Published:
    """Upload ``package`` as version ``version`` of its pipeline (created on first use) and run that version.

    Args:
        client: a ``kfp.Client``.
        package: the compiled pipeline YAML.
        version: the name of the new pipeline version.
        experiment: the KFP experiment of the run (created if missing).
        run_name: the run's name.
        params: the run's parameters, checked against the pipeline's inputs first.
        namespace: the Kubeflow profile namespace, or None.

    Returns:
        The pipeline, version and run ids.
    """
    params = dict(params or {})
    contract = read_contract(package)
    check_parameters(contract, params)
    pipeline_id = client.get_pipeline_id(contract.name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(package), pipeline_name=contract.name,
                                             namespace=namespace).pipeline_id
    uploaded = client.upload_pipeline_version(str(package), version, pipeline_id=pipeline_id)
    experiment_id = client.create_experiment(experiment, namespace=namespace).experiment_id
    run = client.run_pipeline(experiment_id=experiment_id, job_name=run_name, params=params,
                              pipeline_id=pipeline_id, version_id=uploaded.pipeline_version_id)
    return Published(pipeline_id, uploaded.pipeline_version_id, run.run_id)


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def add_publish_command(pipeline_commands: Any) -> argparse.ArgumentParser:
    """Register ``hyperrec pipeline publish`` on the ``pipeline`` subparsers.

    Args:
        pipeline_commands: the ``pipeline`` parser's subparsers action.

    Returns:
        The ``publish`` parser.
    """
    parser = pipeline_commands.add_parser(
        "publish", help="upload a compiled pipeline as a new version to KFP and start a run of it",
        description="Host from --host or KFP_HOST; a bearer token, if the API needs one, from KFP_TOKEN "
        "(else kfp's own credentials, e.g. KF_PIPELINES_SA_TOKEN_PATH).",
    )
    add_common_options(parser)
    parser.add_argument("package", type=Path, help="compiled pipeline YAML (hyperrec pipeline compile)")
    parser.add_argument(
        "--version", required=True, help="name of the new pipeline version, e.g. the git commit"
    )
    parser.add_argument("--experiment", required=True, help="KFP experiment of the run (created if missing)")
    parser.add_argument("--run-name", help="run name (default: <pipeline>-<version>)")
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                        help="run parameter (repeatable); checked against the pipeline's inputs")
    parser.add_argument(
        "--host", default=os.environ.get("KFP_HOST"), help="KFP API endpoint (default: $KFP_HOST)"
    )
    parser.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installs)")
    parser.set_defaults(handler=run_publish_command)
    return parser


def run_publish_command(args: argparse.Namespace) -> None:
    """Handler of ``hyperrec pipeline publish``.

    Args:
        args: the parsed command line.
    """
    import kfp
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if not args.host:
        raise ConfigError("no KFP host: pass --host or set KFP_HOST")
    contract = read_contract(args.package)
    params = typed_parameters(contract, dict(args.param))
    check_parameters(contract, params)  # bad input fails before any call
    try:
        client = kfp.Client(host=args.host, namespace=args.namespace,
                            existing_token=os.environ.get("KFP_TOKEN") or None)
        published = publish(client, args.package, version=args.version, experiment=args.experiment,
                            run_name=args.run_name or f"{contract.name}-{args.version}", params=params,
                            namespace=args.namespace)
    except (ApiException, HTTPError) as exc:
        raise HyperrecError(f"KFP API at {args.host} failed: {str(exc).splitlines()[0]}") from None
    sys.stdout.write(
        f"pipeline {published.pipeline_id} version {published.version_id} run {published.run_id}\n"
    )
