"""Issue 34, item 4: the runs filter understands every setting, comparisons, `and`, tags and notes; an unknown key is
an error that says so; a plain word never matches part of a sweep's name."""
from __future__ import annotations

import pytest

from core.spec.presets import preset
from core.store.notes import NOTES_FILE, read_notes, write_notes
from core.store.query import QueryError, matches, parse_query
from core.store.runs import RunStore


@pytest.fixture
def infos(tmp_path):
    store = RunStore(tmp_path / "runs")
    base = preset("quick", dataset="synthetic")
    made = {
        "sgd16": store.create(base.with_overrides(name="sgd16", sweep_name="sgd-vs-adam", seed=1)),
        "adam64": store.create(base.with_overrides(name="adam64", sweep_name="sgd-vs-adam", optimizer="adam",
                                                   lr=0.001, width=64, seed=2)),
        "plain8": store.create(base.with_overrides(name="plain8", depth=8, shortcut="none", width=32)),
        "pre11": store.create(base.with_overrides(name="pre11", arch="preact", depth=8, seed=2)),
    }
    write_notes(made["plain8"].path, tags=["best", "fig6"], note="Diverged once at lr 0.4; kept")
    return {i.id: i for i in store.list()}


def selected(infos, text: str) -> set[str]:
    query = parse_query(text)
    return {run_id for run_id, info in infos.items() if matches(info, query)}


def test_every_setting_filters_and_compares(infos):
    # each of these showed 0 runs without a word (issue 34, item 4)
    assert selected(infos, "width=64") == {"adam64"}
    assert selected(infos, "seed=2") == {"adam64", "pre11"}
    assert selected(infos, "optimizer=adam") == {"adam64"}
    assert selected(infos, "depth=8") == {"plain8", "pre11"}
    assert selected(infos, "shortcut=none") == selected(infos, "shortcut=plain") == {"plain8"}
    assert selected(infos, "width>=32") == {"adam64", "plain8"}
    assert selected(infos, "width>=32 and seed=2") == {"adam64"}
    assert selected(infos, "lr<0.01") == {"adam64"} and selected(infos, "lr=1e-1") == {"sgd16", "plain8", "pre11"}
    assert selected(infos, "arch=preact") == {"pre11"} and selected(infos, "optimizer!=sgd") == {"adam64"}
    assert selected(infos, "sweep=sgd-vs-adam") == {"sgd16", "adam64"}
    assert selected(infos, "state=queued width=16") == {"sgd16", "pre11"}


def test_a_plain_word_is_a_whole_word_never_part_of_a_sweeps_name(infos):
    assert selected(infos, "adam") == {"adam64"}               # not the SGD run of the sweep "sgd-vs-adam"
    assert selected(infos, "sgd-vs-adam") == {"sgd16", "adam64"}
    assert selected(infos, "plain") == {"plain8"} and selected(infos, "8 plain") == {"plain8"}


def test_tags_and_notes_are_stored_atomically_and_filter(infos, tmp_path):
    assert selected(infos, "tag=best") == {"plain8"} and selected(infos, "best") == {"plain8"}
    assert selected(infos, "note=diverged") == {"plain8"} and selected(infos, "tag!=best") == {"sgd16", "adam64",
                                                                                                  "pre11"}
    path = infos["plain8"].path
    assert read_notes(path) == {"tags": ["best", "fig6"], "note": "Diverged once at lr 0.4; kept"}
    write_notes(path, note="")                                  # the tags stay
    assert read_notes(path) == {"tags": ["best", "fig6"], "note": ""}
    with pytest.raises(ValueError, match="tag 'a b'"):
        write_notes(path, tags=["a b"])
    (path / NOTES_FILE).write_text("{not json")                 # damaged: no tags, never an exception
    assert read_notes(path) == {"tags": [], "note": ""}


@pytest.mark.parametrize("text, message", [
    ("foo=1", "unknown key 'foo'"),
    ("width>=abc", "expected an integer, got 'abc'"),
    ("optimizer>=adam", "only numbers compare with >="),
    ("width=", "give a value after ="),
    ("shortcut=C", "unknown shortcut 'C'"),
])
def test_a_query_that_cannot_be_read_says_why(text, message):
    with pytest.raises(QueryError, match=message):
        parse_query(text)


def test_a_runs_filter_words_are_made_once_and_again_for_a_new_reading(infos, monkeypatch):
    """A filter key in a table of 10,000 runs made every run's words again (0.2 s a key): they are kept with the
    RunInfo, and a run read again (a new RunInfo, its notes re-read) is matched on what it says now."""
    from dataclasses import replace

    from core.store import query

    made = []
    real = query._haystack
    monkeypatch.setattr(query, "_haystack", lambda info, *a: made.append(info.id) or real(info, *a))
    for text in ("fig6", "best", "diverged"):
        assert selected(infos, text) == {"plain8"}
    assert sorted(made) == sorted(infos)                # each run's words made once, for three filters
    again = replace(infos["plain8"], notes={"tags": ["final"], "note": "rerun"}, memo={})
    assert not matches(again, parse_query("fig6")) and matches(again, parse_query("final"))
    infos["sgd16"].notes = {"tags": ["fig6"], "note": ""}      # notes of a run replaced in place: read anew
    assert matches(infos["sgd16"], parse_query("fig6"))
