#!/usr/bin/env bash
# Re-render every bundled report: the quickstart study as README runs it, batchnorm at its `full`
# profile (the paper's 50,000 steps, about 50 minutes), activations_depth at its `long` profile (MNIST,
# about 30 minutes), dropout_mnist at its `long` profile (the papers' widths, 100 epochs: about 5 hours; its
# committed run had every claim decided at its first look of --until-decided), dropout_architectures at its `long`
# profile (Fig. 4's 2 x 1024 and 3 x 1024 nets, 100 epochs: about 2.5 hours), every other bundled study with its `cpu`
# profile (evidence at CPU scale: 5+ seeds, both arms trained; at most about 20 minutes each on 2
# CPU cores; ablation.spec.REPORT_PROFILES says which). Runs resume, so an interrupted regeneration goes on; a study
# that already ran renders again without training (claims and statistics are not hashed).
#   bash reports/regenerate.sh [STUDY ...]
# and then rewrites README's verdict gallery (reports/gallery.py) from the runs.
# MNIST studies read the IDX files from ABLATION_MNIST_DIR (or download them through Keras).
set -euo pipefail
cd "$(dirname "$0")/.."
ablation=${ABLATION:-.venv/bin/ablation}
studies=("$@")
[ ${#studies[@]} -gt 0 ] || mapfile -t studies < <("$ablation" list studies 2>/dev/null | cut -d" " -f1)  # the name before its description
python=${PYTHON:-.venv/bin/python}
for s in "${studies[@]}"; do
  start=$(date +%s)
  # the profile of a committed report: ablation.spec.report_profile (quickstart: its default; batchnorm: full; activations_depth, dropout_mnist, dropout_architectures: long; others: cpu)
  profile=$("$python" -c "import sys; from ablation import spec; print(spec.report_profile(sys.argv[1]) or '')" "$s")
  "$ablation" run "$s" ${profile:+--profile "$profile"} --report "reports/$s.html" --quiet
  echo "$s: $(( $(date +%s) - start )) s"
done
# README's verdict gallery, from the runs behind the pages
# (only the blocks of the studies named, when some were: the others stay as they are)
"$python" reports/gallery.py ${1:+--only "${studies[@]}"} > /dev/null
