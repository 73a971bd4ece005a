#!/usr/bin/env bash
# Fails when a tracked file (or, outside git, any file) holds a merge-conflict
# marker at the start of a line: an unresolved merge must never land.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='^(<<<<<<<|>>>>>>>)( |$)|^=======$'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  found=$(git grep -nE "$pattern" -- . ':(exclude)hack/no-conflict-markers.sh' || true)
else
  found=$(grep -rnE "$pattern" --exclude-dir=.git --exclude=no-conflict-markers.sh . || true)
fi
if [[ -n "$found" ]]; then
  echo "merge-conflict markers (resolve them):"
  echo "$found"
  exit 1
fi
