"""Hyperparameter sweeps on Ray Tune (``pointforge tune``, docs/cli.md).

Ray schedules the trials (locally or on a cluster) and ASHA stops bad ones early; each trial
is an ordinary ``pointforge train`` run in its own folder, so it resumes from its own
checkpoints after a failure and its best config trains again with ``pointforge train``.
Modules: :mod:`.space` (search-space file), :mod:`.hook` (metrics to Ray from the periodic
evaluations), :mod:`.trial` (one trial), :mod:`.sweep` (the Ray driver), :mod:`.results`
(table, plot, best config). Ray is an optional extra; :func:`.ray_support.import_tune` names it.
"""
