"""Which provider answers each model, and whether live calls are possible.

Live: the model's litellm string with the user's usual environment keys, or an
OpenAI-compatible server at ``api_base`` (key from ``api_key_env`` if the server wants one).
Simulated: the built-in simulator (``planner.executor.simulator``) behind the same
``litellm.acompletion`` call. Keys are read from the environment at call time and never
stored.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from planner.errors import InputError
from planner.plan import ModelSnapshot, Plan

SIM_PROVIDER = "routeplan-sim"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class EnvCheck:
    """Per model: the environment variables it still needs (empty = ready for live calls)."""

    missing: dict[str, list[str]]

    @property
    def ready(self) -> bool:
        return not any(self.missing.values())

    def describe(self) -> str:
        """'OPENAI_API_KEY (3 models), DEEPSEEK_API_KEY (gpt-x)': each missing variable once."""
        users: dict[str, list[str]] = {}
        for model, keys in self.missing.items():
            for key in keys:
                users.setdefault(key, []).append(model)
        return ", ".join(f"{k} ({v[0] if len(v) == 1 else f'{len(v)} models'})" for k, v in users.items())


def models_in_use(plan: Plan) -> list[ModelSnapshot]:
    """Snapshots of every model a run may call: assigned ones, their fallbacks, and the
    judges of the tasks' checks (so ``--live`` checks their keys before anything is spent)."""
    names: set[str] = set()
    for a in plan.assignments:
        names.add(a.model)
        names.update(f.model for f in a.fallbacks)
        if a.check is not None and a.check.kind == "judge":
            names.add(a.check.model)
    return [m for m in plan.models if m.name in names]


def check_environment(models: list[ModelSnapshot]) -> EnvCheck:
    """What each model lacks for a live call, using ``litellm.validate_environment``."""
    from planner.executor.caller import import_litellm

    import_litellm()
    import litellm

    missing: dict[str, list[str]] = {}
    for m in models:
        if m.api_base:
            need = [m.api_key_env] if m.api_key_env and not os.environ.get(m.api_key_env) else []
        else:
            found = litellm.validate_environment(model=m.litellm_model)
            need = [] if found.get("keys_in_environment") else list(found.get("missing_keys") or [])
        need += [v for v in _header_vars(m) if not os.environ.get(v)]
        missing[m.name] = need
    return EnvCheck(missing)


def decide_simulated(plan: Plan, mode: str) -> tuple[bool, str]:
    """(simulated?, a one-line reason). Only ``live`` calls providers: keys in the environment
    alone never make a run live. ``--live`` without keys, or with a batch offering whose
    provider's batch API run cannot drive, is an InputError, never a silent simulation."""
    if mode == "simulate":
        return True, "simulated (--simulate)"
    models = models_in_use(plan)
    check = check_environment(models)
    if mode == "live":
        if not check.ready:
            raise InputError(f"--live: provider keys not set: {check.describe()}")
        from planner.executor.batch_api import SUPPORTED_PROVIDERS, unsupported

        assigned = {a.model for a in plan.assignments}  # a batch fallback is never called: skipped
        bad = unsupported(m for m in models if m.mode == "batch" and m.name in assigned)
        if bad:
            raise InputError(
                f"--live: run drives batch jobs through litellm for {', '.join(sorted(SUPPORTED_PROVIDERS))} "
                f"only, not: {', '.join(bad)} (see docs/batch.md, Providers; re-solve without these batch "
                f"offerings, or use --simulate)")
        return False, "live"
    if not models:  # every task is queued: nothing will be called
        return True, "simulated (no task to call: every task in the plan is queued)"
    if check.ready:
        return True, "simulated (provider keys found, but only --live calls providers)"
    return True, f"simulated (use --live for real calls; not set: {check.describe()})"


def _header_vars(m: ModelSnapshot) -> list[str]:
    return [name for v in m.extra_headers.values() for name in _ENV_REF.findall(v)]


def live_call_kwargs(m: ModelSnapshot) -> dict[str, object]:
    """Keyword arguments for ``litellm.acompletion`` that route to this model's provider."""
    kwargs: dict[str, object] = {"model": m.litellm_model}
    if m.api_base:
        kwargs["api_base"] = m.api_base
        # OpenAI-compatible clients insist on some key; local servers ignore it
        kwargs["api_key"] = os.environ.get(m.api_key_env, "") if m.api_key_env else "no-key"
    if m.extra_headers:
        kwargs["extra_headers"] = {
            k: _ENV_REF.sub(lambda g: os.environ.get(g.group(1), ""), v) for k, v in m.extra_headers.items()
        }
    return kwargs


def secrets_of(models: list[ModelSnapshot]) -> list[str]:
    """Values a run may send that must never be written (for the Redactor)."""
    out: list[str] = []
    for m in models:
        if m.api_key_env and os.environ.get(m.api_key_env):
            out.append(os.environ[m.api_key_env])
        for v in m.extra_headers.values():
            for name in _ENV_REF.findall(v):
                if os.environ.get(name):
                    out.append(os.environ[name])
            if not _ENV_REF.search(v):
                out.append(v)  # a literal header value may itself be a credential
    return out
