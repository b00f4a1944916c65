"""Write the notebooks in notebooks/ (outputs cleared): budget_sweep, strategy_comparison,
calibrate_and_evaluate.

The notebooks are generated so that their code stays reviewable as plain Python; edit this
file, then run ``.venv/bin/python notebooks/build_notebooks.py``. Each notebook reads
``ROUTEPLAN_NOTEBOOK_FAST=1`` in its first cell: the test suite's quick run then uses small
batches (the demo batch, and a 500-task slice instead of the 10,000-task batch).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = '''\
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import planner
from planner import formulate
from planner.sweeps_plot import plot_frontier, plot_mix

# The test suite sets ROUTEPLAN_NOTEBOOK_FAST=1 for a quick run on small batches.
FAST = os.environ.get("ROUTEPLAN_NOTEBOOK_FAST") == "1"
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "examples" / "tasks").is_dir())
CATALOG = planner.load_catalog()
pd.options.display.float_format = "{:.4g}".format
plt.rcParams["figure.dpi"] = 90'''


def budget_sweep() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("""\
# What does each extra dollar buy?

Before spending on a batch of LLM calls, the useful question is not "what is the best plan
for $10?" but "how does the best plan change between $1 and $50, and where does more money
stop helping?". This notebook answers it for two batches with `planner.sweep`, which solves
the routing problem (every task to one model, maximise quality within the budget) at many
budgets at once:

* the 7-task demo batch (a summary, a code task, an analysis, four short translations);
* the generated batch of 10,000 mixed tasks.

For each we look at the **frontier** (best mean quality against budget), the **model mix**
(which models carry the batch at each budget), the budget's **shadow price** (quality bought
by the next dollar) and the point where extra money stops buying quality.

Everything runs offline: prices come from the catalog, nothing calls a provider."""),
        code(SETUP),
        code('''\
def budget_range(tasks, n_points):
    """Budgets from the cheapest plan to a little past the best plan's cost, geometrically spaced."""
    f = formulate(tasks, CATALOG, goal="maximize_quality")
    cheapest = float(np.where(f.feasible, f.cost_usd, np.inf).min(axis=1).sum())
    best = planner.sweep(tasks, CATALOG, budget=[1e9])  # no budget pressure: each task's best model
    richest = float(best["projected_cost_usd"].iloc[0])
    return cheapest, richest, np.geomspace(cheapest, richest * 1.05, n_points)


def where_money_stops(df, shares=(0.5, 0.9, 0.99)):
    """The least budget that buys each share of the achievable quality gain.

    The objective (priority-weighted quality) never decreases along the frontier, so the
    first budget past each share is well defined."""
    ok = df[df["served_tasks"] > 0]
    q = ok["objective"].to_numpy()
    gain = (q - q[0]) / (q[-1] - q[0])
    return {s: float(ok["budget_usd"].to_numpy()[np.argmax(gain >= s - 1e-12)]) for s in shares}


def plus10(row, n_tasks):
    """Mean quality bought by 10 % more budget at this point, from the shadow price (first order)."""
    return row["budget_shadow_price"] / n_tasks * 0.1 * row["budget_usd"]


def frontier_figure(df, title):
    fig, (top, mid, bottom) = plt.subplots(3, 1, figsize=(10, 10), sharex=True,
                                           height_ratios=[3, 2, 3], layout="constrained")
    plot_frontier(df, top, log_x=True)
    ok = df[df["served_tasks"] > 0]
    mid.plot(ok["budget_usd"], ok["budget_shadow_price"] / df.attrs["n_tasks"], "o-", ms=3, color="tab:green")
    mid.set_yscale("symlog", linthresh=1e-3)
    mid.set_ylabel("mean quality per\\nextra USD")
    mid.grid(alpha=0.3)
    plot_mix(df, bottom, log_x=True)
    fig.suptitle(title)
    return fig'''),
        md("""\
## 1. The demo batch

Seven tasks, each with its own quality floor. The cheapest plan that meets every floor and
the plan that gives every task its best model bound the interesting range of budgets; we
sweep 40 budgets between them, spaced geometrically because the interesting changes happen
at small budgets."""),
        code('''\
demo = planner.load_tasks(ROOT / "examples" / "tasks" / "demo_batch.yaml")
cheap_demo, rich_demo, budgets = budget_range(demo, 40)
t0 = time.perf_counter()
demo_df = planner.sweep(demo, CATALOG, goal="maximize_quality", budget=budgets)
demo_s = time.perf_counter() - t0
demo_df[["budget_usd", "status", "projected_cost_usd", "mean_quality", "budget_shadow_price", "gap"]].iloc[::5]'''),
        code('''\
frontier_figure(demo_df, "Demo batch (7 tasks): quality, shadow price and model mix against budget");'''),
        code('''\
ok = demo_df[demo_df["served_tasks"] > 0]
stops = where_money_stops(demo_df)
top_model = lambda row: max(demo_df.attrs["models"], key=lambda m: row["n_" + m])
display(Markdown(f"""
**Reading the demo frontier** ({len(demo_df)} budgets, one parametric pass, {demo_s:.2f} s):

* The cheapest plan that meets every task's floor costs **\\\\${cheap_demo:.5f}**, mean quality
  **{ok['mean_quality'].iloc[0]:.3f}**; giving every task its best model costs **\\\\${rich_demo:.4f}**
  (mean quality **{ok['mean_quality'].iloc[-1]:.3f}**), {rich_demo / cheap_demo:.0f} times as much.
* Half of that quality gain is bought by **\\\\${stops[0.5]:.4f}** and 90 % by **\\\\${stops[0.9]:.4f}**,
  {stops[0.9] / rich_demo:.0%} of what the best plan costs.
* The shadow price says what the next dollar buys. Read as "10 % more budget": at
  \\\\${ok['budget_usd'].iloc[1]:.4f} it would add **{plus10(ok.iloc[1], len(demo)):+.3f}** mean quality, at
  \\\\${ok['budget_usd'].iloc[-2]:.3f} only **{plus10(ok.iloc[-2], len(demo)):+.4f}**.
* At the smallest budget the batch runs mostly on `{top_model(ok.iloc[0])}`; at the largest on
  `{top_model(ok.iloc[-1])}`.
* Every point is within **{ok['gap'].max():.1%}** of its LP bound: with 7 tasks one fractional
  task of the LP is a visible share of the total; on large batches the gap vanishes (below).
"""))'''),
        md("""\
With seven tasks the frontier is a staircase: each step is one task moving to a better
model. The model mix shows the hand-offs; note that a more expensive model is not always
a better one for every task type, so a larger budget can *drop* a premium model in favour
of a cheaper model that scores higher on that task."""),
        md("""\
## 2. The 10,000-task batch

The same question at scale. The batch mixes task types, sizes and priorities; a few tasks
demand capabilities or quality only some models have. (In the test suite's quick run this
section uses the first 500 tasks.)

Fifty budgets come from **one parametric pass**: the per-task convex hulls of (cost, quality)
are built and their increments sorted once; each budget is then a binary search along the
cumulative cost. For comparison we also solve the same 50 points one by one."""),
        code('''\
big = planner.load_tasks(ROOT / "examples" / "tasks" / "batch_10k.jsonl")
if FAST:
    big = big[:500]
cheap_big, rich_big, budgets = budget_range(big, 50)

t0 = time.perf_counter()
big_df = planner.sweep(big, CATALOG, goal="maximize_quality", budget=budgets)
parametric_s = time.perf_counter() - t0
t0 = time.perf_counter()
per_point = planner.sweep(big, CATALOG, goal="maximize_quality", budget=budgets, solver="fast", parametric=False)
per_point_s = time.perf_counter() - t0

same = np.allclose(big_df["objective"], per_point["objective"], rtol=1e-9, equal_nan=True)
pd.DataFrame({"method": ["one parametric pass", "one fast solve per budget"],
              "seconds (incl. formulation)": [parametric_s, per_point_s],
              "worst gap": [big_df["gap"].max(), per_point["gap"].max()]})'''),
        code('''\
frontier_figure(big_df, f"{len(big):,} tasks: quality, shadow price and model mix against budget");'''),
        code('''\
ok = big_df[big_df["served_tasks"] > 0]
stops = where_money_stops(big_df)
n = len(big)
mix = planner.model_mix(big_df, share=True)
carriers = mix.max(axis=0).sort_values(ascending=False)
display(Markdown(f"""
**Reading the {n:,}-task frontier** (50 budgets; parametric {parametric_s:.2f} s against
{per_point_s:.2f} s for one solve per budget, {'the same plans' if same else 'plans of equal quality within the gap'}):

* Cheapest feasible plan: **\\\\${cheap_big:.2f}** (mean quality {ok['mean_quality'].iloc[0]:.3f}).
  Every task on its best model: **\\\\${rich_big:.2f}** (mean quality {ok['mean_quality'].iloc[-1]:.3f}).
* 50 % of the achievable quality gain costs **\\\\${stops[0.5]:.2f}**, 90 % **\\\\${stops[0.9]:.2f}**
  ({stops[0.9] / rich_big:.0%} of the best plan's cost), 99 % **\\\\${stops[0.99]:.2f}**. Past the 90 % point
  extra money has stopped buying much quality: the last 10 % of the gain costs
  **\\\\${rich_big - stops[0.9]:.2f}** more.
* 10 % more budget adds **{plus10(ok.iloc[1], n):+.3f}** mean quality at \\\\${ok['budget_usd'].iloc[1]:.2f},
  **{plus10(big_df.iloc[(big_df['budget_usd'] - stops[0.9]).abs().argmin()], n):+.4f}** at the 90 % point and
  **{plus10(ok.iloc[-2], n):+.5f}** at \\\\${ok['budget_usd'].iloc[-2]:.0f}.
* The worst gap to the LP bound over the 50 points is **{ok['gap'].max():.1e}**: at this size the
  hull greedy is optimal for every practical purpose.
* The models that carry the most tasks somewhere on the frontier: {", ".join(f"`{m}` (up to {s:.0%})" for m, s in carriers.head(4).items())}.
"""))'''),
        md("""\
## What to take away

* Quality is concave in the budget: the first dollars move many tasks off the cheapest
  models, later dollars buy ever smaller gains. The shadow price says by how much, at every
  budget, without extra solves.
* The knee of the curve (90-99 % of the achievable gain) is usually a small fraction of the
  budget that buys *every* task its best model: that is the budget worth proposing.
* One parametric pass gives the whole frontier at once with a proven gap per point; the CLI
  does the same: `routeplan sweep examples/tasks/batch_10k.jsonl --budget 2:500:50 --log --plot frontier.png`."""),
    ]


def strategy_comparison() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("""\
# Four goals, one batch, and a simulated run

`routeplan` can optimise a batch for cost, quality, latency, or a balance of the three. This
notebook puts the four goals side by side on one batch under the same budget, then asks how
much a deadline costs, and finally runs one plan through the built-in simulator to compare
the projected spend against what the run actually spent.

The batch is the first 500 tasks of the generated 10,000-task batch (the demo batch in the
test suite's quick run). Nothing here calls a provider."""),
        code(SETUP),
        code('''\
if FAST:
    tasks = planner.load_tasks(ROOT / "examples" / "tasks" / "demo_batch.yaml")
else:
    tasks = planner.load_tasks(ROOT / "examples" / "tasks" / "batch_10k.jsonl")[:500]
f = formulate(tasks, CATALOG, goal="maximize_quality")
cheapest = float(np.where(f.feasible, f.cost_usd, np.inf).min(axis=1).sum())
BUDGET = round(8 * cheapest, 4)  # room to choose, far below every task's best model
print(f"{len(tasks)} tasks; cheapest feasible plan ${cheapest:.4f}; budget for every goal ${BUDGET}")'''),
        md("""\
## 1. The four goals under one budget

Each goal gets the same budget. `minimize_latency` minimises the batch makespan (the time
until the last task finishes, given each model's concurrency); it needs an exact MIP, so
it gets a time limit and may stop with a small gap."""),
        code('''\
GOALS = ["minimize_cost", "maximize_quality", "minimize_latency", "balanced"]
plans = {g: planner.make_plan(tasks, CATALOG, goal=g, limits=planner.Limits(budget_usd=BUDGET), time_limit_s=20)
         for g in GOALS}
summary = pd.DataFrame({
    g: {"cost_usd": p.totals.projected_cost_usd, "budget_used": p.totals.projected_cost_usd / BUDGET,
        "mean_quality": p.totals.mean_quality, "makespan_s": p.totals.makespan_s,
        "mean_latency_s": p.totals.mean_latency_s, "solver": p.solver.name, "status": p.solver.status,
        "gap": p.solver.gap, "solve_s": p.solver.wall_time_s}
    for g, p in plans.items()}).T
summary'''),
        code('''\
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), layout="constrained")
for ax, (col, label) in zip(axes[:3], [("cost_usd", "projected cost (USD)"), ("mean_quality", "mean quality"),
                                       ("makespan_s", "makespan (s)")]):
    ax.bar(range(4), summary[col].astype(float), color=["tab:green", "tab:blue", "tab:orange", "tab:purple"])
    ax.set_xticks(range(4), ["cost", "quality", "latency", "balanced"], fontsize=9)
    ax.set_title(label, fontsize=10)
axes[2].set_yscale("log")
mix = pd.DataFrame({g: pd.Series([a.model for a in p.assignments]).value_counts(normalize=True)
                    for g, p in plans.items()}).fillna(0.0)
keep = mix.max(axis=1).sort_values(ascending=False).index[:8]
mix = pd.concat([mix.loc[keep], (1 - mix.loc[keep].sum()).clip(lower=0).to_frame("other").T])
mix.index = [m.split("/")[-1].removeprefix("us.")[:26] for m in mix.index]
mix.columns = ["cost", "quality", "latency", "balanced"]
mix.T.plot.barh(stacked=True, ax=axes[3], legend=False, width=0.8, colormap="tab10")
axes[3].set_title("model mix (top models)", fontsize=10)
axes[3].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False);'''),
        code('''\
s = summary.astype({"cost_usd": float, "mean_quality": float, "makespan_s": float})
top = {g: pd.Series([a.model for a in p.assignments]).value_counts().index[0].split("/")[-1] for g, p in plans.items()}
display(Markdown(f"""
**What the goals do with the same \\\\${BUDGET} budget:**

* `minimize_cost` spends **\\\\${s.loc['minimize_cost', 'cost_usd']:.4f}** ({s.loc['minimize_cost', 'budget_used']:.0%} of the budget)
  for mean quality {s.loc['minimize_cost', 'mean_quality']:.3f}, mostly on `{top['minimize_cost']}`.
* `maximize_quality` uses {s.loc['maximize_quality', 'budget_used']:.0%} of the budget and reaches
  **{s.loc['maximize_quality', 'mean_quality']:.3f}**, mostly on `{top['maximize_quality']}`; its makespan,
  {s.loc['maximize_quality', 'makespan_s']:.0f} s, is the longest or close to it: the high-quality models are the slow ones.
* `minimize_latency` finishes the batch in **{s.loc['minimize_latency', 'makespan_s']:.1f} s** by spreading tasks over fast
  models ({s.loc['minimize_latency', 'status']}, gap {float(s.loc['minimize_latency', 'gap'] or 0):.1e}).
* `balanced` (weights cost 0.4, quality 0.4, speed 0.2) lands in between: \\\\${s.loc['balanced', 'cost_usd']:.4f},
  quality {s.loc['balanced', 'mean_quality']:.3f}, makespan {s.loc['balanced', 'makespan_s']:.0f} s.
"""))'''),
        md("""\
## 2. What does a deadline cost?

A batch deadline does two things: it caps the work each model can take (concurrency x
deadline seconds, and its requests and tokens per minute), and from 24 h on it admits the
providers' **batch APIs**, which charge about half price. We ask for the cheapest plan that
keeps the mean quality at a fixed floor, for deadlines from 30 s to 24 h."""),
        code('''\
best_q = float(np.where(f.feasible, f.quality, -np.inf).max(axis=1).mean())
cheap_q = float(planner.sweep(tasks, CATALOG, goal="minimize_cost", budget=[1e9])["mean_quality"].iloc[0])
FLOOR = round(cheap_q + 0.5 * (best_q - cheap_q), 2)
deadlines = np.geomspace(30, 86400, 12)
dl = planner.sweep(tasks, CATALOG, goal="minimize_cost", deadline=deadlines,
                   limits=planner.Limits(avg_quality=FLOOR), solver="auto", time_limit_s=5)
dl[["deadline_s", "status", "projected_cost_usd", "mean_quality", "makespan_s", "queued_tasks", "gap"]]'''),
        code('''\
fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, height_ratios=[2, 3], layout="constrained")
ok = dl[dl["served_tasks"] > 0]
top.plot(ok["deadline_s"], ok["projected_cost_usd"], "o-", color="tab:red")
top.set_ylabel("cheapest cost (USD)")
top.set_title(f"Cheapest plan with mean quality >= {FLOOR} against the batch deadline")
top.grid(alpha=0.3)
plot_mix(dl, bottom, log_x=True)
for x, label in ((60, "1 min"), (3600, "1 h"), (86400, "24 h")):
    for ax in (top, bottom):
        ax.axvline(x, color="grey", lw=0.8, ls=":")
    top.annotate(label, (x, 1), xycoords=("data", "axes fraction"), xytext=(3, -12), textcoords="offset points",
                 fontsize=8, color="grey")
top.set_xscale("log");'''),
        code('''\
batch_cols = [c for c in dl.columns if c.startswith("n_") and c.endswith("@batch")]
batch_share = dl[batch_cols].sum(axis=1) / dl["served_tasks"].clip(lower=1)
first, day = ok.iloc[0], ok.iloc[-1]
before = ok[ok["deadline_s"] < 86400]
settled = before[before["projected_cost_usd"] <= before["projected_cost_usd"].iloc[-1] * (1 + 1e-9)].iloc[0]
infeasible = dl[dl["served_tasks"] == 0]
display(Markdown(f"""
**Reading the deadline sweep** (mean quality held at {FLOOR}):

* {f"Below **{first['deadline_s']:.0f} s** no plan exists ({infeasible['message'].iloc[-1]})." if len(infeasible) else
   f"Even **{first['deadline_s']:.0f} s** admits a plan."}
  At **{first['deadline_s']:.0f} s** the cheapest plan costs **\\\\${first['projected_cost_usd']:.4f}**: only
  fast models qualify, and each takes only as many calls as its concurrency and rate limits fit in that window.
* With more time the cost falls to **\\\\${settled['projected_cost_usd']:.4f}** by {settled['deadline_s']:.0f} s,
  {1 - settled['projected_cost_usd'] / first['projected_cost_usd']:.0%} below the tightest plan.
* At **24 h** the batch APIs become eligible and {batch_share.iloc[-1]:.0%} of the tasks move to them:
  **\\\\${day['projected_cost_usd']:.4f}**, another {1 - day['projected_cost_usd'] / settled['projected_cost_usd']:.0%} off.
"""))'''),
        md("""\
## 3. A simulated run: projected against actual spend

Plans are projections: output lengths, latencies and retries vary in practice. Here the
`balanced` plan runs through the built-in simulator, which answers each call from the
catalog's speed and token profile with seeded noise and prices it with the real model's
prices.

The executor never overspends: before a call is sent it reserves the call's *worst case*
(its input plus `max_tokens` of output), and releases what was not used when the call
returns. So the run's budget must cover reservations, not only projections. We run the plan
twice: with the budget it was planned for, and with its projected worst case."""),
        code('''\
import json

from planner.executor import RunOptions, arun_plan  # run_plan outside a notebook; the kernel has a loop running

plan = plans["balanced"]
worst = plan.totals.projected_worst_case_cost_usd
reports = {}
for label, budget in (("planned budget", BUDGET), ("worst-case budget", max(worst, BUDGET))):
    run_dir = Path(tempfile.mkdtemp(prefix="routeplan-run-"))
    await arun_plan(plan, run_dir, RunOptions(budget_usd=budget, seed=7, progress=False), simulate=True)
    reports[label] = json.loads((run_dir / "report.json").read_text())
runs = pd.DataFrame({label: {
    "budget_usd": r["budget_usd"], "projected_usd (plan)": r["totals"]["projected_cost_usd"],
    "tasks done": r["totals"]["n_done"], "tasks queued": r["totals"]["n_queued"],
    "projected_usd (done tasks)": r["totals"]["projected_cost_done_usd"],
    "actual_usd (done tasks)": r["totals"]["actual_cost_done_usd"], "actual_usd (all)": r["spent_usd"],
    "cost error per task (MAPE)": r["projection_error"]["cost_mape"]} for label, r in reports.items()})
runs'''),
        code('''\
full = reports["worst-case budget"]
by_model = pd.DataFrame(full["by_model"]).set_index("model")
by_model.index = [m.split("/")[-1].removeprefix("us.")[:28] for m in by_model.index]
shown = by_model.sort_values("projected_cost_usd", ascending=False).head(10)
fig, ax = plt.subplots(figsize=(10, 3.8), layout="constrained")
x = np.arange(len(shown))
ax.bar(x - 0.2, shown["projected_cost_usd"], 0.4, label="projected")
ax.bar(x + 0.2, shown["actual_cost_usd"].fillna(0), 0.4, label="actual (simulated)")
ax.set_xticks(x, shown.index, rotation=30, ha="right", fontsize=8)
ax.set_ylabel("USD")
ax.set_title("Projected against actual spend per model (run with the worst-case budget)")
ax.legend();'''),
        code('''\
tight, t = reports["planned budget"]["totals"], full["totals"]
miss = (t["actual_cost_done_usd"] - t["projected_cost_done_usd"]) / t["projected_cost_done_usd"]
worst_model = max(full["by_model"], key=lambda m: abs(m.get("cost_error_fraction") or 0))
display(Markdown(f"""
**Reading the runs** (both simulated{'' if full['simulated'] else ' - NOT simulated?'}):

* With the **planned budget** (\\\\${BUDGET}) the run finished {tight['n_done']} of {tight['n_tasks']} tasks and
  queued {tight['n_queued']}: the plan projects \\\\${plan.totals.projected_cost_usd:.4f}, but its calls' worst cases add up to
  \\\\${worst:.4f} ({worst / plan.totals.projected_cost_usd:.1f}x), and the guard will not send a call whose worst case it
  cannot cover. It spent \\\\${reports['planned budget']['spent_usd']:.4f}, never more than the budget.
* With the **worst-case budget** (\\\\${max(worst, BUDGET):.4f}) all {t['n_done']} tasks ran
  ({t['n_failed']} failed, {t['fallbacks_used']} on a fallback model). They were projected at
  \\\\${t['projected_cost_done_usd']:.4f} and cost \\\\${t['actual_cost_done_usd']:.4f} ({miss:+.1%}).
* Per task the projection misses by {full['projection_error']['cost_mape']:.0%} on average (output lengths vary);
  over the batch the misses largely cancel. The largest per-model miss is
  `{worst_model['model'].split('/')[-1]}` ({(worst_model.get('cost_error_fraction') or 0):+.0%}).
* In practice: plan with `--budget` at what you expect to spend, and run with a budget that covers the
  plan's `projected_worst_case_cost_usd` (or accept that the guard queues the last tasks).
"""))'''),
        md("""\
## What to take away

* The goals trade along the expected axes: cost-first plans sit on small models, quality-first
  plans on premium ones and take longest, latency-first plans spread work over fast models.
* A tight deadline costs money through capacity; a 24-hour deadline saves money through batch
  APIs. `routeplan sweep TASKS --deadline 30:86400:12 --log --avg-quality Q` shows the whole curve.
* Projections are good in total and noisy per task; the executor's worst-case reservation keeps
  actual spend under the budget whatever the noise, at the price of queuing tasks when the run's
  budget has no headroom."""),
    ]


def calibrate_and_evaluate() -> list:
    md, code = new_markdown_cell, new_code_cell
    return [
        md("""\
# Learn quality from outcomes, then check the plans against what really happened

A plan is only as good as the quality numbers it optimises. This notebook takes real
per-prompt outcomes of 11 LLMs (RouterBench's ARC-Challenge, MBPP and Winogrande prompts:
each model's 0/1 score, response and cost on every prompt), and

1. **calibrates** profiles on half of the prompts (`planner.calibrate`: quality per model and
   category, shrunk toward a prior; output length; prices fitted where litellm has none);
2. **evaluates** on the other half (`planner.evaluate`): at each budget, plan the held-out
   prompts with the profiles only, then score the plan with the recorded outcomes;
3. compares routeplan's curve with every single model, their hull and the oracle by **AIQ**
   (the area under the cost-score curve over the single models' cost range).

Nothing calls a provider: the truth is the recorded outcomes."""),
        code(SETUP_QUALITY),
        md("## 1. The history, split by prompt"),
        code("""\
hist = planner.read_history(sorted(DATA.glob("*.csv")))
print(hist.summary())
frame = hist.frame
ids = np.array(sorted(frame["task_id"].unique()))
rng = np.random.default_rng(0)
train_ids = set(rng.choice(ids, size=len(ids) // 2, replace=False).tolist())
train = frame[frame["task_id"].isin(train_ids)]
test = frame[~frame["task_id"].isin(train_ids)]
print(f"calibrate on {train['task_id'].nunique():,} prompts, evaluate on {test['task_id'].nunique():,}")"""),
        md("""\
## 2. Calibrate

Quality per (model, category) is the posterior mean of a Beta prior (the base catalog's score
where it has the model; here it has none of these models, so each model's own mean over the
three categories) updated with the observed scores. With hundreds of outcomes per category the
data dominates; the interval says how sure we are."""),
        code("""\
cal = planner.calibrate(train, files=["routerbench (train half)"])
if not FAST:  # the per-prompt predictor, kept only where cross-validation says it helps
    from planner.predictor import fit_predictor
    fit_predictor(train, cal, OUT / "profiles.yaml")
profiles = cal.write(OUT / "profiles.yaml")
table = cal.table.assign(interval=lambda d: [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(d["lo"], d["hi"])])
display(table.pivot(index="model", columns="category", values="quality").round(3))
for note in cal.notes + cal.warnings:
    print(note)"""),
        md("## 3. Evaluate on the held-out prompts"),
        code("""\
ev = evaluate_history(test, profiles, points=POINTS)
curves = pd.DataFrame({"AIQ": ev.aiq}).sort_values("AIQ", ascending=False)
display(curves.round(4))
plan = ev.points[ev.points["curve"] == "routeplan"].dropna(subset=["score"])
display(plan[["budget_usd", "projected_cost_usd", "cost_usd", "projected_quality", "score", "models_used"]].round(4))"""),
        code("""\
fig, ax = plt.subplots(figsize=(9, 5.5), layout="constrained")
plot_curves(ev, ax)
ax.set_title("held-out prompts: realised score against realised cost per prompt")
plt.show()"""),
        code("""\
a, h, o = ev.aiq["routeplan"], ev.aiq["best single-model hull"], ev.aiq["oracle"]
match = ("does not reach it" if ev.match_cost is None else
         f"matches it at ${ev.match_cost:.5f} per prompt, {ev.match_cost / ev.best_model_cost:.0%} of its cost")
err = (plan["projected_quality"] - plan["score"]).abs().max()
display(Markdown(f\"\"\"### Reading the backtest

* routeplan's category-level plans reach an AIQ of **{a:.3f}**, against **{h:.3f}** for the best
  single model at each cost (the hull) and **{o:.3f}** for the oracle, which knows each prompt's
  outcome in advance.
* The best single model, {ev.best_model}, scores {ev.best_model_score:.3f} at
  ${ev.best_model_cost:.5f} per prompt; routeplan {match}.
* Projected and realised scores differ by at most {err:.3f} along the curve: the profiles hold
  on prompts they never saw.
* The gap to the oracle is per-prompt knowledge: which of two similar prompts a cheap model gets
  right. Category profiles cannot see it; verifying cheap answers and escalating (cascades) is how
  to close it.\"\"\"))"""),
    ]


SETUP_QUALITY = '''\
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import planner
from planner.evaluate import evaluate_history
from planner.evaluate_render import plot_curves

# The test suite sets ROUTEPLAN_NOTEBOOK_FAST=1 for a quick run (fewer budgets, no predictor).
FAST = os.environ.get("ROUTEPLAN_NOTEBOOK_FAST") == "1"
POINTS = 12 if FAST else 30
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "examples" / "tasks").is_dir())
DATA = Path(os.environ.get("ROUTEPLAN_ROUTERBENCH", ROOT.parent / "shared" / "data" / "routerbench"))
assert DATA.is_dir(), f"RouterBench outcome files expected in {DATA} (set ROUTEPLAN_ROUTERBENCH)"
OUT = Path(tempfile.mkdtemp(prefix="routeplan-calibrate-"))
pd.options.display.float_format = "{:.4g}".format
plt.rcParams["figure.dpi"] = 90'''


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    path = HERE / name
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return path


def main() -> None:
    for name, cells in (("budget_sweep.ipynb", budget_sweep()), ("strategy_comparison.ipynb", strategy_comparison()),
                        ("calibrate_and_evaluate.ipynb", calibrate_and_evaluate())):
        print(write(name, cells))


if __name__ == "__main__":
    main()
