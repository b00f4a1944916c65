"""A sweep's CSV names each point's model mix by short name beside the per-id counts."""

from __future__ import annotations

from tests.conftest import DEMO


def test_sweep_csv_names_the_mix_by_short_name_beside_the_id_counts(run_cli, tmp_path):
    import pandas as pd

    from planner.catalog import short_name

    path = tmp_path / "frontier.csv"
    code, _, err = run_cli("sweep", DEMO, "--budget", "0.01:1:3", "--solver", "highs", "-o", path)
    assert code == 0, err
    df = pd.read_csv(path)
    for _, row in df.iterrows():
        counts = {short_name(c.removeprefix("n_")): int(row[c]) for c in df.columns
                  if c.startswith("n_") and row[c] > 0}
        assert dict((k, int(v)) for k, v in (p.split("=") for p in row["models_short"].split("; "))) == counts
