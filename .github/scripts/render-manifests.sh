#!/usr/bin/env bash
# Render what a cluster would get: `helm lint` and `helm template` of the chart with every values file in
# helm/hyperrec/ci, and `kubectl kustomize` of every overlay, into OUTDIR for review. Fails on the first
# error. The pytest suite (tests/deploy) checks the same renders against the CRD and Kubernetes schemas.
set -euo pipefail

out=${1:?usage: render-manifests.sh OUTDIR}
kubectl=${KUBECTL:-kubectl}
chart=helm/hyperrec
mkdir -p "$out/helm" "$out/kustomize"
for values in "$chart"/ci/*-values.yaml; do
  name=$(basename "$values" -values.yaml)
  set -- -f "$values"
  # canary and raw-deployment layer on prod, as in tests/deploy/deploy_render.py
  case "$name" in canary|raw-deployment) set -- -f "$chart/ci/prod-values.yaml" -f "$values" ;; esac
  helm lint --strict "$chart" "$@"
  helm template hyperrec "$chart" --namespace hyperrec "$@" > "$out/helm/$name.yaml"
done
for overlay in manifests/overlays/*/; do
  name=$(basename "$overlay")
  "$kubectl" kustomize "$overlay" > "$out/kustomize/$name.yaml"
done
echo "rendered into $out"
