#!/usr/bin/env bash
# Re-render every bundled report: the quickstart study as README runs it, every other bundled
# study with its `quick` profile (CPU-sized). Runs resume, so an interrupted regeneration goes on.
#   bash reports/regenerate.sh [STUDY ...]
set -euo pipefail
cd "$(dirname "$0")/.."
ablation=${ABLATION:-.venv/bin/ablation}
studies=("$@")
[ ${#studies[@]} -gt 0 ] || mapfile -t studies < <("$ablation" list studies 2>/dev/null)
for s in "${studies[@]}"; do
  if [ "$s" = quickstart ]; then
    "$ablation" run quickstart --report reports/quickstart.html --quiet
  else
    "$ablation" run "$s" --profile quick --report "reports/$s.html" --quiet
  fi
done
