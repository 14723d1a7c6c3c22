"""Studies: a search over settings whose trials are ordinary runs (DESIGN.md "Studies").

``space``: ``--space FIELD=...`` as Optuna distributions and back to settings; ``asha``: rungs, ranks and promotions
(pure); ``spec``: what a study is (its settings, kept in the Optuna study's user attributes) and its storage;
``driver``: ask-and-tell through the queue, the pruner's decisions at rungs, promotions by resuming.
Optuna is imported here and by core/results' study report only.

May import: core.util, core.spec, core.data, core.store, core.train, core.serve.
"""
