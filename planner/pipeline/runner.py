"""Run a checked pipeline: steps in dependency order, results addressable by step id.

Each step's parameters are rendered against the inputs and the earlier results, checked
against its action's parameter model, and run. Every step draws on the pipeline's one
budget. When a step fails, the steps before it keep their results and spend: the runner
writes ``results.json`` and the report (with the failure) before the error reaches the
user.

Output folder (``--out``)::

    report.md           the markdown report (also printed)
    results.json        every step's result, the budget ledger and step timings
    steps/<step_id>/    each executed step's plan.json and the executor's ledger and report
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.errors import InputError, RouteplanError, StorageError
from planner.pipeline import templating
from planner.pipeline.shared_budget import PipelineBudget
from planner.pipeline.tools import ReportParams
from planner.pipeline.validate import CheckedPipeline, param_error
from planner.plan import check_budget
from planner.status import status


@dataclass(frozen=True)
class PipelineOptions:
    """How to run a pipeline (the executor's own settings for each step are ``RunOptions``)."""

    out_dir: Path
    live: bool = False
    seed: int = 0
    catalog_path: str | None = None
    solver: str | None = None  # every routing step's solver; None: each step's own (default auto)


@dataclass
class StepRecord:
    step_id: str
    tool: str
    action: str
    status: str  # done | failed
    wall_s: float
    error: str | None = None


@dataclass
class PipelineRun:
    """The state of one run: inputs, the shared budget, results and per-step records."""

    checked: CheckedPipeline
    inputs: dict[str, Any]
    options: PipelineOptions
    budget: PipelineBudget
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[StepRecord] = field(default_factory=list)
    started_s: float = field(default_factory=time.perf_counter)
    report_path: Path | None = None
    report_markdown: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)  # the pipeline's `outputs:`, rendered
    _catalog: Any = None

    @property
    def failed(self) -> StepRecord | None:
        return next((r for r in self.records if r.status == "failed"), None)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started_s

    @property
    def simulated(self) -> bool:
        return not self.options.live

    def catalog(self) -> Any:
        """The model catalog, loaded once per run (``--catalog`` or the default)."""
        if self._catalog is None:
            from planner import catalog

            self._catalog = (catalog.load_catalog(self.options.catalog_path)
                             if self.options.catalog_path else catalog.load_catalog())
        return self._catalog

    def context(self) -> dict[str, Any]:
        """What templates see: inputs by name, earlier results by step id."""
        p = self.checked.pipeline
        return {**self.inputs, **self.results, "inputs": dict(self.inputs),
                "pipeline": {"id": p.id, "name": p.name or p.id}}


@dataclass(frozen=True)
class StepContext:
    """What an action gets besides its parameters."""

    step_id: str
    run: PipelineRun
    out_dir: Path  # the step's own folder under the run's output folder

    @property
    def remaining_usd(self) -> float:
        return self.run.budget.remaining_usd


def pipeline_budget(checked: CheckedPipeline, inputs: dict[str, Any]) -> float:
    """The pipeline's shared budget in USD (its ``budget:`` rendered against the inputs)."""
    p = checked.pipeline
    raw = templating.render(p.budget, {**inputs, "inputs": inputs}, step_id="(pipeline)",
                            path="budget") if p.budget is not None else None
    if raw is None:
        raise InputError("budget: the pipeline declares no budget (e.g. budget: "
                         "\"{{ task_budget }}\")", file=p.source)
    try:
        budget_usd = float(raw)
    except (TypeError, ValueError):
        raise InputError(f"budget: expected dollars, got {raw!r}", file=p.source) from None
    if not budget_usd > 0:
        raise InputError(f"budget: ${budget_usd:g} cannot pay for any step; give a budget > 0",
                         file=p.source)
    check_budget(budget_usd, "budget")
    return budget_usd


def run_pipeline(checked: CheckedPipeline, inputs: dict[str, Any], options: PipelineOptions,
                 ) -> PipelineRun:
    """Run every step in order; on a step's error, save what was done and re-raise it."""
    run = PipelineRun(checked, inputs, options, PipelineBudget(pipeline_budget(checked, inputs)))
    check_options(options)
    run.catalog()  # a bad --catalog fails before any step runs
    claim_out_dir(options.out_dir)
    pipeline = checked.pipeline
    for step_id in checked.order:
        step = pipeline.step(step_id)
        action = checked.actions[step_id]
        t0 = time.perf_counter()
        try:
            rendered = templating.render(step.parameters, run.context(), step_id=step_id)
            try:
                params = action.params.model_validate(rendered)
            except ValidationError as exc:
                raise InputError(f"step {step_id}: {param_error('parameters', exc)}") from None
            step_dir = options.out_dir / "steps" / step_id
            with status(f"step {step_id} ({action.tool}.{action.name})"):
                result = action.run(params, StepContext(step_id, run, step_dir))
        except BaseException as exc:
            err = _naming_step(step_id, exc)
            run.records.append(StepRecord(step_id, action.tool, action.name, "failed",
                                          time.perf_counter() - t0, str(err)))
            _save_after_failure(run)
            if err is exc:
                raise
            raise err from None
        run.results[step_id] = result
        run.records.append(StepRecord(step_id, action.tool, action.name, "done",
                                      time.perf_counter() - t0))
    run.outputs = templating.render(pipeline.outputs, run.context(), step_id="(outputs)",
                                    path="outputs")
    write_results(run)
    return run


def check_options(options: PipelineOptions) -> None:
    """Every option checked before any step runs (a step's own parameters are checked by
    ``validate``): a solver that is unknown or not installed is refused here, not after the
    first steps have run."""
    if options.solver is None:
        return
    from solvers.registry import BACKENDS

    backend = BACKENDS.get(options.solver)
    if backend is None:
        raise InputError(f"--solver: unknown solver {options.solver!r}; expected one of "
                         f"{', '.join(BACKENDS)}")
    if not backend.is_available():
        raise InputError(f"--solver: {options.solver} is not installed here; "
                         f"expected one of {', '.join(b for b in BACKENDS if BACKENDS[b].is_available())}")


def claim_out_dir(out_dir: Path) -> None:
    """Make ``out_dir`` ready for a new run. An earlier *simulated* run there is replaced (it
    paid nothing); an earlier live run's ledgers are never touched: choose another folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out: expected a folder for the run's report, results and ledgers, but it "
                         "is a file; choose another --out", file=str(out_dir))
    previous = out_dir / "results.json"
    steps = out_dir / "steps"
    if previous.exists() or steps.exists():
        try:
            simulated = json.loads(previous.read_text()).get("simulated") is True
        except (OSError, ValueError):
            simulated = False
        if not simulated:
            raise InputError(f"{out_dir}: holds an earlier run that was live or cannot be read; "
                             "its ledgers record real spend, so choose another --out")
        shutil.rmtree(steps, ignore_errors=True)
        for name in ("results.json", "report.md"):
            (out_dir / name).unlink(missing_ok=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"--out: cannot create the folder: {exc.strerror or exc}",
                           file=str(out_dir)) from None


def _naming_step(step_id: str, exc: BaseException) -> BaseException:
    """The user's error with the step named first (the one line the CLI prints)."""
    if not isinstance(exc, RouteplanError) or str(exc).startswith(f"step {step_id}:"):
        return exc
    named = copy.copy(exc)  # same type and attributes (diagnosis, task_id, ...)
    named.args = (f"step {step_id}: {exc}",)
    return named


def _save_after_failure(run: PipelineRun) -> None:
    """Keep the spend and results so far: results.json and the report, marked failed."""
    from planner.pipeline.pipeline_report import write_pipeline_report

    write_results(run)
    report_step = next((s for s in run.checked.pipeline.steps
                        if run.checked.actions[s.id].name == "generate"
                        and run.checked.actions[s.id].tool == "report-generator"), None)
    params = ReportParams()
    if report_step is not None:
        # the report must still be written: a report step that cannot render gets defaults
        with contextlib.suppress(InputError, ValidationError):
            params = ReportParams.model_validate(
                templating.render(report_step.parameters, run.context(), step_id=report_step.id))
    try:
        write_pipeline_report(params, StepContext(report_step.id if report_step else "report", run,
                                         run.options.out_dir))
    except Exception as exc:  # never mask the step's own error, but do not hide this one
        sys.stderr.write(f"warning: the report could not be written: {exc}\n")


def write_results(run: PipelineRun) -> Path:
    """``results.json``: inputs, budget ledger, step records and results (atomic write)."""
    path = run.options.out_dir / "results.json"
    data = {
        "pipeline": run.checked.pipeline.id,
        "simulated": run.simulated,
        "inputs": run.inputs,
        "budget": {
            "initial_usd": run.budget.initial_usd,
            "spent_usd": run.budget.spent_usd,
            "remaining_usd": run.budget.remaining_usd,
            "steps": [vars(s) for s in run.budget.steps],
        },
        "steps": [vars(r) for r in run.records],
        "outputs": run.outputs,
        "results": run.results,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    tmp.replace(path)
    return path
