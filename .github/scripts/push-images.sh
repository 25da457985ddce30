#!/usr/bin/env bash
# Push the images `make image IMAGE_TAG=TAG` built: IMAGES (space-separated repositories, e.g.
# "ghcr.io/hyperrec/hyperrec ghcr.io/hyperrec/hyperrec-serving"), each as REPO:TAG. Logs in to REGISTRY
# with REGISTRY_USER and REGISTRY_PASSWORD (repository secrets) first.
set -euo pipefail

tag=${1:?usage: push-images.sh TAG}
: "${IMAGES:?set IMAGES to the image repositories}" "${REGISTRY:?}" "${REGISTRY_USER:?}" "${REGISTRY_PASSWORD:?}"
printf '%s' "$REGISTRY_PASSWORD" | podman login "$REGISTRY" --username "$REGISTRY_USER" --password-stdin
for repository in $IMAGES; do
  podman push "$repository:$tag"
  echo "pushed $repository:$tag"
done
