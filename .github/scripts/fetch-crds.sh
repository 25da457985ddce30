#!/usr/bin/env bash
# Download the published CRDs that tests/deploy validates custom resources against, at the commits listed in
# the shared crds README, into DEST (then: export HYPERREC_CRDS_DIR=DEST). CI runners have no shared/ folder.
set -euo pipefail

dest=${1:?usage: fetch-crds.sh DEST}
kserve=aaac4e294dae2c7b1aa1886447793f3aa1c30912
argocd=37ee0097cf851bc2dd7665fc081bbce61a7e836e
mkdir -p "$dest"
for crd in inferenceservices servingruntimes clusterservingruntimes inferencegraphs; do
  curl --fail --silent --show-error --location --retry 3 \
    --output "$dest/serving.kserve.io_$crd.yaml" \
    "https://raw.githubusercontent.com/kserve/kserve/$kserve/config/crd/full/serving.kserve.io_$crd.yaml"
done
curl --fail --silent --show-error --location --retry 3 --output "$dest/argoproj.io_applications.yaml" \
  "https://raw.githubusercontent.com/argoproj/argo-cd/$argocd/manifests/crds/application-crd.yaml"
echo "CRDs downloaded into $dest"
