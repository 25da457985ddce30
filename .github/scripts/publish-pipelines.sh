#!/usr/bin/env bash
# Upload the compiled training pipeline to Kubeflow Pipelines as version VERSION and start a run of it
# (hyperrec pipeline publish). KFP_HOST (and KFP_TOKEN when the API needs a bearer token) come from
# repository secrets; without KFP_HOST the step is skipped with a notice, not failed.
set -euo pipefail

version=${1:?usage: publish-pipelines.sh VERSION [PIPELINES_DIR]}
pipelines=${2:-outputs/pipelines}
if [ -z "${KFP_HOST:-}" ]; then
  echo "::notice title=Kubeflow Pipelines::KFP_HOST secret not set: pipeline upload and run skipped"
  exit 0
fi
hyperrec=${HYPERREC:-.venv/bin/hyperrec}
"$hyperrec" pipeline publish "$pipelines/hyperrec-training.yaml" --version "$version" \
  --experiment "${KFP_EXPERIMENT:-hyperrec-ci}" --param "pipeline_run=ci-$version" \
  ${KFP_NAMESPACE:+--namespace "$KFP_NAMESPACE"}
