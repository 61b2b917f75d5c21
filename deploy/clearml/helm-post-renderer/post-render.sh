#!/bin/sh
# Helm post-renderer: Helm's manifests on stdin, the same with the sso-proxy patches on stdout.
#   helm upgrade --install clearml allegroai/clearml -f deploy/clearml/helm-values.yaml \
#     --post-renderer deploy/clearml/helm-post-renderer/post-render.sh
set -eu
dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
trap 'rm -f "$dir/all.yaml"' EXIT
cat > "$dir/all.yaml"
if command -v kustomize >/dev/null 2>&1; then
  kustomize build "$dir"
else
  kubectl kustomize "$dir"
fi
