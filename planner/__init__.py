"""planner: the LLM domain of routeplan (tasks, catalogs, formulation, plans, executor).

Importing it must stay cheap: litellm, the solvers' native libraries and pandas load only
when a function that needs them runs.
"""
