"""Write the README's screenshots (docs/img/*.svg) with Textual's own screenshot, over real tiny finished runs.

    python docs/make_screenshot.py            # a few minutes on 2 busy CPU cores

It trains a small sweep with the real command line into a temporary runs folder (ResNet-20 and -32, shortcut A and
plain, 2 epochs on 30 real CIFAR-10 training images per class written by ../shared/tools/cifar10_jpeg.py; synthetic
data where ../shared is missing), opens the app over that folder with ``App.run_test()`` and saves the runs table
and the new-run form (filled in as in the README's tour) as SVG. Rerun it after changing what those screens show.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img"
TOOL = ROOT.parent / "shared" / "tools" / "cifar10_jpeg.py"
SIZE = (120, 30)


def make_runs(work: Path) -> None:
    """Train the sweep the screenshot shows, as a person would: ``tui_app.py train --sweep ...``."""
    data = ["--dataset", "synthetic"]
    if TOOL.exists():
        subprocess.run([sys.executable, str(TOOL), str(work / "data"), "--train-per-class", "30",
                        "--test-per-class", "20"], check=True, capture_output=True)
        data = ["--data-dir", "data", "--no-download"]
    subprocess.run([sys.executable, str(ROOT / "tui_app.py"), "train", "--preset", "quick", "--epochs", "2",
                    "--warmup-iters", "0", "--batch-size", "30", "--device", "cpu", *data,
                    "--sweep", "depth=20,32", "--sweep", "shortcut=A,none", "--sweep-name", "fig6-tiny",
                    "--runs-dir", "runs"], cwd=work, check=True, capture_output=True)


async def shoot(work: Path) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from screens.app import make_app
    from screens.new_run import NewRunScreen

    app = make_app(runs_dir="runs", data_dir="data", poll_interval=3600)
    saved = []
    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, lambda: len(app.watcher.infos) >= 4, "the four runs in the table")
        saved.append(Path(app.save_screenshot("runs.svg", path=str(OUT))))
        form = NewRunScreen()
        await app.push_screen(form)
        await _until(pilot, lambda: form.is_mounted and form.ready and app.focused is not None, "the form ready")
        # the README's tour: preset quick, ResNet-20 and -56, each with its plain counterpart
        form.query_one("#preset").value = "quick"
        await pilot.pause(0.3)
        form.query_one("#f-depth").value = "20,56"
        form.query_one("#f-shortcut-none").value = True
        form.query_one("#f-depth").focus()
        await _until(pilot, lambda: len(form.configs) == 4, "the form's four runs")
        saved.append(Path(app.save_screenshot("new-run.svg", path=str(OUT))))
    return saved


async def _until(pilot, condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    await pilot.pause(0.2)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reslab-shot-") as tmp:
        work = Path(tmp)
        os.environ.update(RESLAB_CONFIG_DIR=str(work / "config"), RESLAB_CACHE_DIR=str(work / "cache"))
        make_runs(work)
        os.chdir(work)    # a relative runs folder: no temporary path on the screen
        for path in asyncio.run(shoot(work)):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
