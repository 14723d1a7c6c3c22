"""Key `e` on the compare and detail screens: write the report of their runs (as `tui_app.py report` does) in a
thread worker, then tell the screen the folder's path. Layer responses evaluate each checkpoint once, which can
take seconds, so the work stays off the event loop; a run that cannot be reported becomes a notification."""
from __future__ import annotations

from pathlib import Path

from textual.screen import Screen


def export_report(screen: Screen, run_ids: list[str]) -> None:
    app = screen.app
    root = app.store.root

    def work() -> None:
        from core.results.report import default_out_dir, write_report
        from core.store.runs import RunError
        from core.util.errors import ReportError

        try:
            infos = [app.store.get(r).info() for r in run_ids]
            result = write_report(infos, default_out_dir(root), named=True)
        except (ReportError, RunError) as exc:
            app.call_from_thread(report_done, screen, None, str(exc))
            return
        archive = zipped(result.out_dir) if app.is_web else None    # `serve`: for the browser to download
        app.call_from_thread(report_done, screen, result.out_dir, "; ".join(result.notes), archive)

    screen.notify(f"writing the report of {len(run_ids)} run(s) ...", timeout=3)
    screen.run_worker(work, thread=True, exclusive=True, group="report", exit_on_error=False)


def report_done(screen: Screen, folder: Path | None, message: str, archive: Path | None = None) -> None:
    """Shown on the screen that asked: the folder (kept in ``screen.report_folder``) or why there is none."""
    if folder is None:
        screen.notify(f"no report: {message}", severity="error", timeout=10)
        return
    screen.report_folder = folder
    screen.notify(f"report written to {folder}/report.md" + (f" ({message})" if message else ""), timeout=15)
    if archive is not None:          # in a browser (`serve`) the folder is on the server: the zip is downloaded
        screen.app.deliver_binary(archive, save_filename=archive.name, open_method="download")


def zipped(folder: Path) -> Path:
    """``folder`` as FOLDER.zip beside it (in the worker's thread: no file I/O on the event loop)."""
    import shutil

    return Path(shutil.make_archive(str(folder), "zip", root_dir=folder.parent, base_dir=folder.name))
