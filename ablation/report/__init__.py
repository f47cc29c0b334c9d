"""HTML reports of ablation runs: ``render(run_dir, out_html=None)``.

``figures`` holds the seaborn figure functions and the choice of figures per run; ``page``
computes the tables (with :mod:`ablation.stats`) and fills the Jinja2 template in ``templates/``.
"""

from __future__ import annotations

from ablation.report.page import render, render_html

__all__ = ["render", "render_html"]
