"""Compare zoo models: PSIS-LOO over cells plus grouped cross-validation (script form).

The same as ``horizon-zoo compare``; every option of that command works here. For example,
all three questions (a new task, a new family, a new agent) on METR's runs, two folds at a time:

    .venv/bin/python scripts/compare_models.py --runs ../shared/data/metr-early/all_runs.jsonl \\
        --models logistic,logistic_task_effects,irt_2pl --cv task,family,agent --folds 10 --jobs 2

From Python: ``horizon_zoo.api.compare(data, models=[...], cv=["task"])`` returns the tables.
"""

from __future__ import annotations

import sys

from horizon_zoo.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
