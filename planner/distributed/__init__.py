"""Past one machine: planning and running on Ray (the optional ``routeplan[ray]`` extra).

- :mod:`planner.distributed.cluster`: Ray present or one line saying how to install it; a
  local Ray by default, ``--ray-address`` for an existing cluster.
- :mod:`planner.distributed.run_worker` / :mod:`planner.distributed.run_coordinator`:
  ``routeplan run --workers N``: N executor actors, one coordinator owning the budget and
  the ledger.
- :mod:`planner.distributed.plan_shards` / :mod:`planner.distributed.plan_driver`: the
  ``fast`` knapsack decomposed by task, shards formulated and written on the workers.

Nothing here is imported unless workers are asked for, so the default install stays light.
"""
