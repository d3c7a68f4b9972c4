"""Defaults of the commands' options that are not a module's own constant, read by the CLI (its
``--help`` prints them) and the API alike, so the two cannot drift apart.

The modules that use these constants import them from here (``cv.DEFAULT_FOLDS`` is this
``FOLDS``), and this module imports nothing heavy, so the CLI starts fast. The others live beside
the code that gives them meaning and are imported from there by both: sampler settings in
:class:`horizon_zoo.backends.SamplerSettings`, the run-directory root in
:data:`horizon_zoo.rundir.DEFAULT_RUNS_ROOT`, and the data filters in :mod:`horizon_zoo.data`.
"""

from __future__ import annotations

MODEL = "logistic"  # fit, check, horizons, sbc and new-model --from: METR's model
CV_MODELS = ("logistic", "logistic_task_effects")  # the question CV answers first: do task effects help?
FOLDS = 10  # grouped CV: folds per scheme
QS = (0.5, 0.8)  # horizons reported: 50% and 80% success
SBC_SIMS = 100
SBC_RANKS = 99  # L: ranks take L + 1 = 100 values, so 5, 10, 20 or 25 bins are exactly equiprobable
SBC_MAX_AGENTS = 6  # SBC refits every simulation: a design subset keeps each fit small
SBC_MAX_TASKS = 40
