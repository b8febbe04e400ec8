"""A report with nothing in it but what a test or benchmark sets, for rendering one section alone."""

from __future__ import annotations

from typing import Any


def bare_report(**fields: Any) -> dict[str, Any]:
    """Every key ``runner.render.report.build_report`` writes, empty, then ``fields`` over them."""
    return {
        "qfrun_report": 1,
        "pipeline": "demo",
        "path": "pipeline.yaml",
        "platform": "local",
        "generated_at": "",
        "run": None,
        "stages": [],
        "edges": [],
        "families": {},
        "evaluations": [],
        "comparison": {"stage": "all", "metrics": {}, "samples": {}},
        "models": [],
        "services": [],
        "history": {"runs": [], "metrics": {}},
        "changes": None,
        "samples": [],
        **fields,
    }
