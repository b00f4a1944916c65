"""The ledger's record of money a worker holds (no Ray needed): counted as spent while held,
as spent for good when the worker dies or the coordinator crashes, gone when given back."""

from __future__ import annotations

import asyncio

from planner.executor.ledger import TASK_COLUMNS, open_ledger


def _write(ledger, *calls) -> None:
    async def go() -> None:
        for fn, args in calls:
            fn(*args)
        await ledger.commit()

    asyncio.run(go())


def test_a_held_grant_counts_as_spent_and_a_crash_keeps_it_spent(tmp_path):
    ledger = open_ledger(tmp_path, durable=False)
    _write(ledger, (ledger.set_grant, ("<ray worker 0>", 5_000)), (ledger.set_grant, ("<ray worker 1>", 7_000)))
    assert ledger.spent_pusd() == 12_000
    _write(ledger, (ledger.set_grant, ("<ray worker 0>", 3_000)))  # settled 2_000 elsewhere: re-stated
    assert ledger.spent_pusd() == 10_000
    ledger.close()
    again = open_ledger(tmp_path, durable=False)  # the coordinator crashed: --resume
    assert again.recover() == 2  # both held grants are lost, at what they held
    assert again.spent_pusd() == 10_000
    again.close()


def test_a_dead_workers_grant_is_lost_and_a_returned_one_is_gone(tmp_path):
    ledger = open_ledger(tmp_path, durable=False)
    _write(ledger, (ledger.set_grant, ("<ray worker 0>", 5_000)), (ledger.set_grant, ("<ray worker 1>", 7_000)))
    _write(ledger, (ledger.lose_grant, ("<ray worker 0>", "worker died")), (ledger.set_grant, ("<ray worker 1>", 0)))
    assert ledger.spent_pusd() == 5_000
    states = dict(ledger.conn.execute("SELECT task_id, state FROM attempts WHERE purpose='grant'"))
    assert states == {"<ray worker 0>": "lost"}
    ledger.close()


def test_unfinished_tasks_of_a_dead_worker_go_back_to_pending(tmp_path):
    ledger = open_ledger(tmp_path, durable=False)
    values = {"seq": 0, "type": "qa", "priority": 1.0, "planned_model": "m", "status": "pending"}
    ledger.insert_tasks([tuple({"task_id": t, **values}.get(c) for c in TASK_COLUMNS) for t in ("t1", "t2")])
    _write(ledger, (ledger.record_attempt, ("t1", 1, "m", 900, "error", 400, None, None, None, "500", 0.0, 1.0)))
    assert ledger.counts() == {"running": 1, "pending": 1}
    _write(ledger, (ledger.return_to_pending, (["t1", "t2"],)))
    assert ledger.counts() == {"pending": 2}
    assert ledger.task_progress("t1") == (1, 400)  # its attempt and its cost are kept
    ledger.close()
