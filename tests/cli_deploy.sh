#!/bin/sh
# cli_deploy.sh — deploy/k8s passes deploy/check-k8s (the schema check used
# in place of kubeconform, see README), and a broken copy of it does not.
# Skipped (77) without python3 and its yaml module.
set -u
python3 -c 'import yaml' 2>/dev/null || { echo "skip: python3-yaml not installed"; exit 77; }
deploy/check-k8s || exit 1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed 's/readOnly: true}/readOnly: false}/; s/matchLabels: {app: herd}/matchLabels: {app: other}/' \
    deploy/k8s/herd.yaml >"$tmp/broken.yaml"
sed 's/replicas: 3/replica: 3/' deploy/k8s/herd.yaml >"$tmp/typo.yaml"
for f in "$tmp/broken.yaml" "$tmp/typo.yaml"; do
  if deploy/check-k8s "$f" >/dev/null; then echo "FAIL: check-k8s accepted $(basename "$f")"; exit 1; fi
done
echo "check-k8s refuses the broken copies"
