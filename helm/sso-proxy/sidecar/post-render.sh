#!/bin/sh
# Helm post-renderer for ClearML's chart: Helm's manifests on stdin, the same on stdout with
# sso-proxy added as a sidecar of the webserver pod and the webserver Service pointed at it.
#
#   helm upgrade --install clearml allegroai/clearml -n clearml \
#     -f helm/sso-proxy/sidecar/clearml-chart-values.yaml \
#     --post-renderer helm/sso-proxy/sidecar/post-render.sh
#
# Needs `kustomize` or `kubectl` (kubectl kustomize) on the machine that runs Helm. The patches
# are applied in a temporary copy of this directory, so the directory may be read-only.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/sso-proxy-post-render.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp "$here/kustomization.yaml" "$here/webserver-sidecar.yaml" "$here/webserver-service.yaml" \
  "$here/sso-proxy-state-pvc.yaml" "$work/"
cat > "$work/all.yaml"
if command -v kustomize >/dev/null 2>&1; then
  kustomize build "$work"
elif command -v kubectl >/dev/null 2>&1; then
  kubectl kustomize "$work"
else
  echo "post-render.sh: neither kustomize nor kubectl is installed" >&2
  exit 1
fi
