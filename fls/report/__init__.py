"""Tables 2-5 and Figures 3-5 of the paper rebuilt from the pipeline's outputs, next to the paper's numbers.

Submodules: ``layout`` (where each stage writes; the ``grid`` section), ``inputs`` (strict readers of
run/eval/score outputs), ``paper`` (the published numbers, shipped as CSV), ``tables``, ``figures`` (Figures 3, 5),
``perception`` (Figure 4), ``build`` (the ``fls report`` entry point).
"""

from fls.report.build import ReportConfig, build_report
from fls.layout import GridConfig, Layout

__all__ = ["GridConfig", "Layout", "ReportConfig", "build_report"]
