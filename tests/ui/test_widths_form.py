"""Issue 28 in the form: the lab-report preset fills the report's net (widths 30/60/90, a 64-filter stem, B, the
course code's init), width and widths follow each other as typed, and the memory line weighs ResNet-110
64/128/256 at batch 128 against 64 (the two fixes the report weighed)."""
from __future__ import annotations

from .helpers import POLL, wait_for
from .test_form import open_form, set_field


async def test_the_form_builds_the_lab_reports_net_and_weighs_its_memory(tmp_path):
    from screens.app import make_app

    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(160, 40)) as pilot:
        form = await open_form(pilot)
        form.query_one("#preset").value = "lab-report"
        await wait_for(pilot, lambda: form.configs and form.configs[0].widths == (30, 60, 90), 10, "the report's net")
        cfg = form.configs[0]
        assert (cfg.width, cfg.stem_width, cfg.shortcut, cfg.init, cfg.batch_size) == (30, 64, "B", "torch-default", 64)
        assert "30/60/90 stem 64" in str(form.query_one("#summary").render())
        await set_field(pilot, "width", "16")                      # the short form: the stages follow
        await wait_for(pilot, lambda: form.configs and form.configs[0].widths == (16, 32, 64), 10, "w, 2w, 4w")
        assert form.query_one("#f-widths").value == "16,32,64"
        await set_field(pilot, "widths", "64,128,256")             # and width follows the stages
        await wait_for(pilot, lambda: form.configs and form.configs[0].width == 64, 10, "width 64")
        assert form.query_one("#f-width").value == "64"
        await set_field(pilot, "depth", "110")
        await set_field(pilot, "batch_size", "64,128")
        await wait_for(pilot, lambda: len(form.configs) == 2, 10, "two runs")
        summary = str(form.query_one("#summary").render())
        assert "memory ~3.4 GiB (batch_size=64) to ~6.4 GiB (batch_size=128)" in summary, summary
        form.query_one("#preset").value = "he2016"                 # another preset resets the stages and the init
        await wait_for(pilot, lambda: form.configs and form.configs[0].widths == (16, 32, 64), 10, "he2016's net")
        assert (form.configs[0].stem_width, form.configs[0].init) == (0, "he-fan-out")
