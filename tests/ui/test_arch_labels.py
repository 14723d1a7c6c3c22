"""Issue 22, point 2: the runs table (TUI and `runs`) names a follow-up net by its papers' label ('PreAct-164',
'WRN-28-10') and shows its paper's number; the paper's ResNets keep their depth."""
from __future__ import annotations

import json

import pytest

from cli.main import main
from core.store.runs import RunStore
from screens.widgets.run_table import row_cells, varied_columns
from tests.core.results_helpers import fake_run


@pytest.fixture
def runs(tmp_path):
    store = RunStore(tmp_path / "runs")
    c10 = dict(dataset="cifar10")
    fake_run(store, [7.0], depth=110, shortcut="A", width=16, name="res", **c10)
    fake_run(store, [6.0], depth=164, shortcut="B", width=16, arch="preact-bottleneck", name="pre", **c10)
    fake_run(store, [5.0], depth=28, shortcut="B", width=160, arch="wrn", dropout=0.3, name="wide", **c10)
    fake_run(store, [9.0], depth=16, shortcut="B", width=32, arch="wrn", name="small", **c10)
    return store


def test_table_rows_say_the_net_and_its_papers_number(runs):
    cells = {i.config.name: row_cells(i, False) for i in runs.list()}
    got = {name: (c["depth"].plain, c["paper"].plain) for name, c in cells.items()}
    assert got == {"res": ("110", "6.43"), "pre": ("PreAct-164", "5.46"), "wide": ("WRN-28-10", "3.89"),
                   "small": ("WRN-16-2", "-")}


def test_runs_of_several_archs_get_an_arch_column(runs):
    """PreAct-20 reads the same for basic and bottleneck blocks (20 is 6n+2 and 9n+2): where the runs shown differ in
    arch, the table has a column for it (and a filter 'arch=preact-bottleneck' finds them)."""
    infos = runs.list()
    assert varied_columns(infos)[0] == "arch"
    same = [i for i in infos if i.config.arch == "wrn"]
    assert "arch" not in varied_columns(same)


def test_runs_command_shows_labels_and_papers_numbers(runs, tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "PreAct-164" in lines["pre"] and "5.46%" in lines["pre"]
    assert "WRN-28-10" in lines["wide"] and "3.89%" in lines["wide"] and " 110 " in lines["res"]
    assert main(["runs", "--format", "json", "--runs-dir", str(tmp_path / "runs")]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"ResNet-110", "PreAct-164", "WRN-28-10", "WRN-16-2"}
    assert rows["WRN-28-10"]["arch"] == "wrn" and rows["WRN-28-10"]["paper_err"] == 3.89
    assert main(["show", "wide", "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "  net      WRN-28-10\n" in out and "paper 3.89%" in out


async def test_seed_groups_and_compare_name_the_nets(tmp_path):
    from screens.app import make_app
    from screens.compare import CompareScreen
    from screens.widgets.group_table import GroupsTable

    from .helpers import POLL, screen_text, wait_for
    from .test_results_ui import row_texts

    store = RunStore(tmp_path / "runs")
    for seed, err in ((1, 5.0), (2, 6.0)):
        fake_run(store, [20.0, err], depth=164, shortcut="B", width=16, arch="preact-bottleneck", seed=seed,
                 dataset="cifar10")
        fake_run(store, [20.0, err - 1], depth=28, shortcut="B", width=160, arch="wrn", dropout=0.3, seed=seed,
                 dataset="cifar10")
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("f")
        groups = app.screen.query_one(GroupsTable)
        await wait_for(pilot, lambda: groups.display and groups.row_count == 2, 5, "the seed groups")
        rows = sorted(r[1:7] for r in row_texts(groups))
        assert rows == [["PreAct-164 B w16 sgd constant", "2", "1-2", "5.00", "5.50 ± 0.71", "5.46"],
                        ["WRN-28-10 B d0.3 sgd constant", "2", "1-2", "4.00", "4.50 ± 0.71", "3.89"]]
        for row in range(2):
            groups.move_cursor(row=row)
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 10, "compare")
        await pilot.pause()
        text = screen_text(app)
        assert "PreAct-164 B" in text and "WRN-28-10 B d0.3" in text and "5.46" in text and "3.89" in text


async def test_detail_names_the_net_and_its_paper(runs, tmp_path):
    from screens.app import make_app
    from screens.detail import DetailScreen

    from .helpers import POLL, screen_text, wait_for

    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        ids = {i.config.name: i.id for i in runs.list()}
        app.open_run(ids["pre"], "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 10, "the detail")
        await wait_for(pilot, lambda: "PreAct-164  shortcut B" in screen_text(app), 10, "the net's name")
        assert "paper 5.46%: 0.54 points worse" in screen_text(app)
        app.pop_screen()
        app.open_run(ids["small"], "detail")
        await wait_for(pilot, lambda: "WRN-16-2  shortcut B" in screen_text(app), 10, "the WRN's name")
        assert "its paper reports no error for this net" in screen_text(app)


def test_seed_group_rows_lead_with_what_differs_and_pooled_seeds_read_once():
    """Issue 34, item 6: 7 of 19 rows read 'ResNet-8 w16 sgd multistep' with what differs far right; a group pooled
    from three sweeps showed seeds '1,1,1-2,2,2'."""
    from screens.widgets.group_table import leading, seeds_text

    assert leading("width=64, lr=0.05, batch_size=64, optimizer=adam") == "lr=0.05, batch_size=64"
    assert leading("arch=wrn, width=160") == ""
    assert seeds_text([1, 1, 1, 2, 2, 2]) == "1-2 (3 runs each)" and seeds_text([1, 2, 3, 5]) == "1-3,5"
    assert seeds_text([1, 1, 2]) == "1-2 (3 runs)"


def test_compare_names_a_preact_run_preact():
    from core.util.formatting import model_name

    assert model_name(11, "B", "preact-bottleneck") == "PreAct-11"      # compare's curve name (was 'ResNet-11')
