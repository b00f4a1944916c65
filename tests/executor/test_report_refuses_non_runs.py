"""`routeplan report DIR` on a folder that is not a run: one line, exit 2."""

from __future__ import annotations

import sqlite3


def test_garbage_ledger(run_cli, tmp_path):
    (tmp_path / "ledger.sqlite").write_text("garbage")
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "not a routeplan run ledger" in err and "Traceback" not in err


def test_other_programs_database(run_cli, tmp_path):
    conn = sqlite3.connect(tmp_path / "ledger.sqlite")
    conn.execute("CREATE TABLE meta (key, value)")
    conn.execute("INSERT INTO meta VALUES ('a', 'b')")
    conn.commit()
    conn.close()
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "no such table: tasks" in err and "Traceback" not in err
