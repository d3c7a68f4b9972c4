"""Report posterior horizon intervals and their trend over release dates (script form).

The same as ``horizon-zoo horizons``, for use from a checkout without the console script; every
option of that command works here. The worked example in the README:

    .venv/bin/python scripts/report_horizons.py --models logistic,logistic_task_effects \\
        --runs ../shared/data/metr-early/all_runs.jsonl \\
        --release-dates ../shared/data/metr-early/release_dates.yaml --q 50,80

From Python, the same report is ``horizon_zoo.api.horizons(...)``, which returns the tables as
pandas DataFrames (see its docstring).
"""

from __future__ import annotations

import sys

from horizon_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["horizons", *sys.argv[1:]]))
