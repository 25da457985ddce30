#!/usr/bin/env bash
# Point the overlay Argo CD deploys (manifests/overlays/prod) at TAG for each image repository in IMAGES,
# with `kustomize edit set image` (the overlay's `images:` newTag). Committing is the workflow's job.
set -euo pipefail

tag=${1:?usage: bump-image-tag.sh TAG [OVERLAY]}
overlay=${2:-manifests/overlays/prod}
: "${IMAGES:?set IMAGES to the image repositories}"
command -v kustomize >/dev/null || { echo "kustomize is not installed" >&2; exit 1; }
(
  cd "$overlay"
  for repository in $IMAGES; do
    kustomize edit set image "$repository=$repository:$tag"
  done
)
echo "$overlay now deploys tag $tag"
