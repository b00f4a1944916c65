"""A deadline too short for the batch says so in the user's words: the deadline they set and
the least one that admits a plan, whichever backend proved it infeasible.
"""

import json


def test_too_short_deadline_names_the_deadline(run_cli, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"t{i}", "type": "translate", "prompt": f"Translate #{i}",
                                         "input_tokens": 200, "expected_output_tokens": 150}) + "\n"
                             for i in range(3000)))
    code, _, err = run_cli("solve", tasks, "--deadline", "20", "-o", tmp_path / "plan.json")
    assert code == 2
    assert "deadline 20 s" in err and "--deadline" in err
    assert "Lagrangian" not in err and "e+" not in err
    # the deadline the message suggests does admit a plan
    import re

    suggested = re.search(r"--deadline (\d+) admits a plan", err)
    assert suggested, err
    code, _, err = run_cli("solve", tasks, "--deadline", suggested.group(1), "-o", tmp_path / "plan.json")
    assert code == 0, err
    # and a deadline that fits still plans
    code, _, err = run_cli("solve", tasks, "--deadline", "3600", "-o", tmp_path / "plan.json")
    assert code == 0, err
