"""Pipelines: YAML steps (tool, action, parameters, dependencies, ``{{ }}`` templates) run in
dependency order under one shared budget, the routing steps backed by the solver and the
LLM steps by the executor.

    from planner.pipeline import prepare, run_pipeline, PipelineOptions
    checked, inputs = prepare("examples/model_routing_demo.yaml", {"priority": "cost"})
    run = run_pipeline(checked, inputs, PipelineOptions(out_dir=Path("out")))
    run.results["assess_requirements"]["recommendations"][0]["model"]

Modules: ``schema`` (file and inputs), ``validate`` (references and order), ``templating``
(jinja2), ``tools`` (the action registry), ``routing`` and ``generate`` (the actions),
``budget`` (the shared budget), ``runner``, ``report``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planner.pipeline.runner import PipelineOptions, PipelineRun, pipeline_budget, run_pipeline
from planner.pipeline.schema import Pipeline, load_pipeline
from planner.pipeline.validate import CheckedPipeline, check

__all__ = ["CheckedPipeline", "Pipeline", "PipelineRun", "PipelineOptions", "check", "load_pipeline",
           "prepare", "run_pipeline"]


def prepare(path: str | Path, given: dict[str, str]) -> tuple[CheckedPipeline, dict[str, Any]]:
    """Load, check and type the inputs of a pipeline: every input error before any work."""
    checked = check(load_pipeline(path))
    inputs = checked.pipeline.resolve_inputs(given)
    pipeline_budget(checked, inputs)  # a budget that cannot pay for anything fails here
    return checked, inputs
