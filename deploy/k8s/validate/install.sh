#!/usr/bin/env bash
# Installs the validator's npm packages (js-yaml, kubernetes-models; versions pinned by
# package-lock.json) into deploy/k8s/validate/node_modules, ignored by git. Idempotent: does
# nothing, and needs no network, when node_modules already matches package-lock.json; else
# runs `npm ci` against the npm registry. Called by tests/cluster/k8s_test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
stamp=node_modules/.softq-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
command -v npm > /dev/null || { echo "k8s validate: npm is missing (Debian: apt-get install npm)" >&2; exit 1; }
echo "k8s validate: npm ci (js-yaml, kubernetes-models)" >&2
npm ci --no-audit --no-fund --loglevel=error > /dev/null
echo "$want" > "$stamp"
