"""Issue 22, point 2: the form knows the architecture. The depth field's help and error name the depths the chosen
arch accepts (6n+2 basic, 9n+2 bottleneck, 6n+4 WRN) and follow a switch of arch; dropout's help says it is for wrn."""
from __future__ import annotations

from .helpers import POLL, wait_for
from .test_form import open_form, set_field


def msg(form, name: str) -> str:
    return str(form.query_one(f"#msg-{name}").render())


async def test_depth_help_and_error_follow_the_arch(tmp_path):
    from screens.app import make_app

    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(160, 40)) as pilot:        # wide: each field's help beside it
        form = await open_form(pilot)
        assert "depth for resnet: 6n+2" in msg(form, "depth") and "wrn only" in msg(form, "dropout")
        await set_field(pilot, "depth", "32")
        form.query_one("#f-arch").value = "preact-bottleneck"
        await wait_for(pilot, lambda: "depth" in form.errors, 10, "depth 32 refused for bottleneck blocks")
        assert "depth must be 9n+2 with n >= 1 for arch preact-bottleneck (164, 1001" in msg(form, "depth")
        await set_field(pilot, "depth", "164")
        await wait_for(pilot, lambda: "depth" not in form.errors, 10, "depth 164 accepted")
        assert "depth for preact-bottleneck: 9n+2 (164, 1001, ...), n bottleneck blocks" in msg(form, "depth")
        form.query_one("#f-arch").value = "wrn"
        await wait_for(pilot, lambda: "6n+4" in msg(form, "depth"), 10, "the wrn rule")
        assert "for arch wrn" in form.errors["depth"]               # 164 is not 6n+4
        await set_field(pilot, "depth", "16")
        await wait_for(pilot, lambda: "depth for wrn: 6n+4" in msg(form, "depth"), 10, "depth 16 accepted")
        assert "Dropout between a wide block's two convolutions" in msg(form, "dropout")
        await set_field(pilot, "dropout", "0.3")
        await wait_for(pilot, lambda: form.configs and form.configs[0].dropout == 0.3, 10, "dropout taken")
        form.query_one("#f-arch").value = "preact"               # dropout 0.3 means nothing without wrn: refused
        await wait_for(pilot, lambda: "dropout" in form.errors, 10, "dropout refused for preact")
        assert "for arch wrn only" in msg(form, "dropout")
        form.query_one("#f-depth").focus()
        await pilot.pause()
        assert "depth for preact: 6n+2" in str(form.query_one("#focus-help").render())


def test_the_forms_summary_gives_the_memory_and_what_a_smaller_device_does():
    from core.spec.config import RunConfig
    from screens.widgets.form_text import summary_text

    def summary(**kw) -> str:
        return summary_text([RunConfig(batch_size=128, **kw)], {}, "here").plain

    assert "memory up to ~1.5 GiB" in summary(depth=110)
    assert "micro-batches" not in summary(depth=110)
    big = summary(arch="preact-bottleneck", depth=1001, shortcut="B")
    assert "memory up to ~22.9 GiB: on a device with less, the run splits its batch" in big
    assert "set micro_batches" in summary(arch="preact-bottleneck", depth=1001, shortcut="B", on_oom="fail")
    split = summary(arch="preact-bottleneck", depth=1001, shortcut="B", micro_batches=4)
    assert "memory up to ~5.8 GiB (32 images a micro-batch)" in split
    assert "~4.1 GiB" in summary(arch="wrn", depth=28, width=160, shortcut="B")
