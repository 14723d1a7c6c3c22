"""The new-run form's launch (screens/new_run.py): runs, after the CLI's data check, or a study.

A mixin of NewRunScreen, kept apart so the form's fields and its launching can each be read in one sitting."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.widgets import Button, Input, Static

from core.data.datasets import DataError
from core.spec.config import RunConfig
from core.study.spec import StudySpec

from .widgets.choice import Choice
from .widgets.study_fields import start_study
from .widgets.worker_errors import TellWorkerErrors


class LaunchMixin(TellWorkerErrors):
    """ctrl+s: the runs the form shows (in the queue or this app), or the study it describes (its driver started in
    the background, its screen opened)."""

    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        if not self.ready or self._launching:
            return
        self.revalidate()
        if self.errors:
            first = next(iter(self.errors))
            self.notify(f"cannot launch: {len(self.errors)} field(s) need fixing ({', '.join(self.errors)})",
                        severity="error", timeout=6)
            self.query_one("#f-shortcut-A" if first == "shortcut" else f"#f-{first}").focus()
            return
        self.remember()
        if self.study is not None:
            self._launching = True
            self._start_study(self.study)
            return
        configs = [c.with_overrides(data_dir=str(Path(c.data_dir).expanduser().resolve())) if c.data_dir else c
                   for c in self.configs]   # an absolute folder: resumable from anywhere, as the CLI does
        where = str(self.query_one("#where", Choice).value)
        if configs[0].dataset == "synthetic":
            self._create(configs, where)
            return
        self._launching = True
        self.query_one("#summary", Static).update(Text("checking the data folder ...", style="yellow"))
        self._check_data_then_create(configs, where)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _check_data_then_create(self, configs: list[RunConfig], where: str) -> None:
        """The CLI's check (core.data.cifar.check_data: reads the data, downloads it if allowed), before any folder."""
        from core.data.cifar import check_data

        try:
            check_data(configs[0])
        except DataError as exc:
            self.app.call_from_thread(self._data_refused, str(exc))
            return
        self.app.call_from_thread(self._create, configs, where)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def _start_study(self, spec: StudySpec) -> None:
        """The data checked as for runs, then the study made in its storage and its driver started (a thread)."""
        from core.data.cifar import check_data

        try:
            check_data(spec.config)
            said = start_study(self.app.store.root, spec)
        except DataError as exc:
            self.app.call_from_thread(self._data_refused, str(exc))
            return
        except (ValueError, OSError) as exc:     # a study of that name, a storage or folder that cannot be written
            self.app.call_from_thread(self._study_refused, str(exc))
            return
        self.app.call_from_thread(self._study_started, spec.name, said)

    def _study_refused(self, message: str) -> None:
        self._launching = False
        self.notify(f"cannot start the study: {message}", severity="error", timeout=10)

    def _study_started(self, name: str, said: str) -> None:
        self._launching = False
        self.clear_launch_settings()
        self.notify(said, timeout=8)
        self.app.open_study(name, replace=True)

    def _data_refused(self, message: str) -> None:
        self._launching = False
        self.model.refuse_data(message)
        self.revalidate()
        self.notify("cannot launch: the data folder does not hold the data set (see data_dir)", severity="error",
                    timeout=6)
        self.query_one("#f-data_dir", Input).focus()

    def _create(self, configs: list[RunConfig], where: str) -> None:
        """The run folders made in the App's actions thread; the queue or the first run's monitor once listed."""
        self._launching = True
        self.query_one("#summary", Static).update(Text("creating the run folders ...", style="yellow"))
        self.app.launch(configs, where=where, note=self.notes.get("milestones"), then=partial(self._created, where))

    def _created(self, where: str, ids: list[str]) -> None:
        self._launching = False
        if not ids:                         # refused (told): the form stays as it was, to be mended
            if self.is_attached:
                self.revalidate()
            return
        self.clear_launch_settings()   # a name, a sweep, its seeds and variants are one launch's (never remembered)
        if not self.is_attached:
            return
        if where == "queue":
            self.app.open_queue(replace=True)
        else:
            self.app.open_run(ids[0], "monitor", replace=True)
