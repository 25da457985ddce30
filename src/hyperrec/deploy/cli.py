"""``hyperrec deploy NAME@ALIAS [--dry-run] [--namespace NS]``: serve a registered bundle on KServe.

Examples::

    hyperrec deploy hyperrec-ranker@champion --dry-run              # print the InferenceService body (YAML)
    hyperrec deploy hyperrec-ranker@challenger --namespace hyperrec  # create it, or start a canary
    hyperrec deploy hyperrec-ranker/7 --set deploy.node_pool=cpu     # an exact version, on CPU nodes

``hyperrec.cli.build_parser`` hooks it in with ``add_deploy_commands(commands)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from hyperrec.cli_options import add_common_options, config_from_args


def add_deploy_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``deploy`` on the ``hyperrec`` subparsers; returns its parser.

    Args:
        subparsers: the ``hyperrec`` parser's subparsers action.

    Returns:
        The ``deploy`` parser.
    """
    deploy = subparsers.add_parser(
        "deploy",
        help="create or patch the KServe InferenceService serving a registered bundle",
        description="Resolve a registered bundle, check its Triton config against deploy.node_pool and "
        "create the InferenceService (100%% of traffic) or patch it (a canary at "
        "deploy.canary_traffic_percent). See docs/DEPLOY.md.",
    )
    add_common_options(deploy)
    deploy.add_argument("reference", metavar="NAME@ALIAS",
                        help="registered model and alias (hyperrec-ranker@champion) or NAME/VERSION")
    deploy.add_argument("--dry-run", action="store_true",
                        help="print the body a first deploy creates; talk to no cluster")
    deploy.add_argument("--namespace", help="namespace of the InferenceService (default: deploy.namespace)")
    deploy.add_argument("--output", choices=["yaml", "json"], default="yaml", help="--dry-run format")
    deploy.set_defaults(handler=_cmd_deploy)
    return deploy


def _cmd_deploy(args: argparse.Namespace) -> None:
    from hyperrec.deploy.service import deploy, plan_deployment

    cfg = config_from_args(args)
    if args.namespace:
        cfg = cfg.model_copy(update={"deploy": cfg.deploy.model_copy(update={"namespace": args.namespace})})
    if args.dry_run:
        body = plan_deployment(cfg, args.reference).body
        text = (
            json.dumps(body, indent=2) + "\n"
            if args.output == "json"
            else yaml.safe_dump(body, sort_keys=False)
        )
        sys.stdout.write(text)
        return
    sys.stdout.write(deploy(cfg, args.reference).summary() + "\n")
