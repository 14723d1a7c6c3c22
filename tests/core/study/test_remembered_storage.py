"""A study kept in another storage than the folder's studies.db (`study NAME --storage journal:PATH`) is found again
by `study show NAME`, `study NAME` and the TUI's study screen without --storage: runs/.studies/NAME.json says where."""
from __future__ import annotations

import stat

from cli.main import main
from core.store.runs import RunStore
from core.study.spec import StudySpec, load, remember_storage, storage_of
from screens.study import load_study
from tests.conftest import tiny_config


def test_a_study_in_a_journal_is_found_by_show_and_the_study_screen_without_storage(tmp_path, capsys):
    root = tmp_path / "runs"
    root.mkdir()
    url = f"journal:{tmp_path / 'shared.journal'}"
    spec = StudySpec(name="far", base=tiny_config(val_split=64).to_dict(), space=["lr=log:1e-3:1e-1"], trials=3)
    load("far", url, spec)
    assert main(["study", "show", "far", "--runs-dir", str(root)]) == 2          # not in the folder's studies.db
    assert "no study 'far'" in capsys.readouterr().err
    remember_storage(root, "far", url)
    assert storage_of(root, "far") == url and storage_of(root, "other").endswith("studies.db")
    assert stat.S_IMODE((root / ".studies" / "far.json").stat().st_mode) == 0o600   # a URL may hold a password
    assert main(["study", "show", "far", "--runs-dir", str(root)]) == 0
    assert "study far: 3 trials of up to 2 epochs" in capsys.readouterr().out
    assert load_study(RunStore(root), "far")["trials"] == []
