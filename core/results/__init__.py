"""Results as a write-up needs them: seed groups (mean ± std), the paper's Table 6 and Fig. 6/7 layouts, TensorBoard.

``groups``: runs that differ only in their seed; ``table6``: the table as Markdown/LaTeX/CSV; ``figures``: Fig. 6 and
Fig. 7 with matplotlib; ``responses``: layer responses of a checkpoint (Fig. 7's data);
``report``: the folder `tui_app.py report` writes. Like the rest of core/, no textual or rich here; matplotlib,
tensorboard and torch are imported only by the modules that draw, log or evaluate.

May import: every other core package (results is the top of the engine).
"""
