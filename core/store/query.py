"""The runs filter (the TUI's `/`): which runs a query such as ``width>=32 and optimizer=adam tag=best`` selects.

A query is terms joined by spaces (``and`` between them may be written; every term must hold):

* ``KEY=VALUE``, ``KEY!=VALUE`` and, for numbers, ``KEY>=V``, ``KEY<=V``, ``KEY>V``, ``KEY<V``. KEY is any run setting
  (every RunConfig field: depth, width, seed, optimizer, shortcut, lr, milestones ...; ``sweep`` for sweep_name),
  ``state``, ``tag`` (the run has that tag) or ``note`` (its note contains the text). VALUE is read as the setting
  reads it (``lr=1e-1`` is ``lr=0.1``, ``shortcut=plain`` is ``shortcut=none``, ``milestones=51,75``).
* a plain word: a whole word of the run's state, label (``ResNet-56`` has ``resnet`` and ``56``), optimizer, schedule,
  data set, architecture, ``plain`` or ``resnet``, its tags or its whole sweep name; or a part of its id, note or
  error. A word never matches part of a sweep's name: ``adam`` leaves out the SGD runs of the sweep ``sgd-vs-adam``.

``parse_query`` raises QueryError naming an unknown key or a value the setting cannot take, so a client can say so
instead of showing no runs without a word. No textual here: the CLI may filter with it too.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

from core.spec.config import ConfigError, RunConfig
from core.spec.grid import parse_shortcuts, value_text
from core.store.notes import read_notes

FIELDS = tuple(f.name for f in fields(RunConfig))
ALIASES = {"sweep": "sweep_name", "tags": "tag", "bs": "batch_size", "wd": "weight_decay"}
EXTRA = ("state", "tag", "note")
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "!=": lambda a, b: a != b,
    "=": lambda a, b: a == b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
}
_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)(>=|<=|!=|=|>|<)(.*)$")
NUMERIC = {f.name for f in fields(RunConfig) if f.type in ("int", "float")}


class QueryError(ValueError):
    """A query that cannot be read: the message says which term and what is allowed."""


@dataclass(frozen=True)
class Term:
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Query:
    terms: tuple[Term, ...] = ()
    words: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms or self.words)


def parse_query(text: str) -> Query:
    """Read a filter; raises QueryError for an unknown key, a value the setting cannot take, or a comparison of
    something that is not a number."""
    terms, words = [], []
    for token in str(text).split():
        if token.lower() == "and":
            continue
        m = _TERM.match(token)
        if m is None:
            words.append(token.lower())
            continue
        key, op, raw = m.group(1).replace("-", "_").lower(), m.group(2), m.group(3)
        key = ALIASES.get(key, key)
        if key not in FIELDS and key not in EXTRA:
            raise QueryError(f"unknown key {m.group(1)!r}: use a setting (depth, width, seed, lr ...), state, tag "
                             f"or note")
        if not raw:
            raise QueryError(f"{token!r}: give a value after {op}")
        if op not in ("=", "!=") and key not in NUMERIC:
            raise QueryError(f"{token!r}: only numbers compare with {op}; {key} takes = or !=")
        terms.append(Term(key, op, _value(key, raw, token)))
    return Query(tuple(terms), tuple(words))


def _value(key: str, raw: str, token: str) -> Any:
    if key in EXTRA:
        return raw.lower()
    if key == "shortcut":
        try:
            return parse_shortcuts(raw)[0]
        except ValueError as exc:
            raise QueryError(f"{token!r}: {exc}") from None
    try:
        value = getattr(RunConfig.from_dict({key: raw}), key)
    except ConfigError as exc:
        raise QueryError(f"{token!r}: {exc.errors.get(key, exc)}") from None
    return value.lower() if isinstance(value, str) else value


def matches(info: Any, query: Query) -> bool:
    """Does the run (a RunInfo) satisfy every term and word of ``query``? A run without a readable config has no
    settings: only state, tag, note and words can select it."""
    if not query:
        return True
    cfg = info.config
    notes = {}
    if _needs_notes(query):     # as the listing read them (the app's thread never reads a run file), else now
        notes = info.notes if getattr(info, "notes", None) is not None else read_notes(info.path)
    for term in query.terms:
        if not _holds(term, info, cfg, notes):
            return False
    if query.words:
        tokens, text = _haystack_of(info, cfg, notes)
        return all(word in tokens or word in text for word in query.words)
    return True


def _needs_notes(query: Query) -> bool:
    return bool(query.words) or any(t.key in ("tag", "note") for t in query.terms)


def _holds(term: Term, info: Any, cfg: RunConfig | None, notes: dict) -> bool:
    if term.key == "state":
        have: Any = info.state
    elif term.key == "tag":
        found = term.value in [t.lower() for t in notes.get("tags", [])]
        return found if term.op == "=" else not found
    elif term.key == "note":
        found = term.value in str(notes.get("note", "")).lower()
        return found if term.op == "=" else not found
    elif cfg is None:
        return False
    else:
        have = getattr(cfg, term.key)
        have = have.lower() if isinstance(have, str) else have
    try:
        return OPS[term.op](have, term.value)
    except TypeError:
        return False


def prepare(infos: Iterable[Any]) -> None:
    """Make the runs' filter words now (in a thread of the app's), so that the first key of a filter costs what
    every later one does."""
    for info in infos:
        if getattr(info, "notes", None) is not None:
            _haystack_of(info, info.config, info.notes)


def _haystack_of(info: Any, cfg: RunConfig | None, notes: dict) -> tuple[set[str], str]:
    """``_haystack``, kept with the RunInfo (``memo``; a reader makes a new RunInfo when it reads a run again): a
    filter key in a table of 10,000 runs made every run's words again, 0.2 s a key."""
    memo = getattr(info, "memo", None)
    kept = memo.get("words") if memo is not None else None
    if kept is not None and kept[0] is notes:
        return kept[1]
    made = _haystack(info, cfg, notes)
    if memo is not None:
        memo["words"] = (notes, made)
    return made


def _haystack(info: Any, cfg: RunConfig | None, notes: dict) -> tuple[set[str], str]:
    """(whole words a plain word must equal, the texts it may be part of, one a line: a word has no line break)."""
    tokens = {info.state.lower(), *(t.lower() for t in notes.get("tags", []))}
    if cfg is not None:
        tokens |= {w for w in re.split(r"[\s-]+", cfg.label().lower()) if w}
        tokens |= {cfg.optimizer, cfg.schedule, cfg.dataset, cfg.arch, f"depth{cfg.depth}", f"d{cfg.depth}",
                   str(cfg.depth), "plain" if cfg.shortcut == "none" else "resnet", cfg.sweep_name.lower(),
                   f"w{cfg.width}", f"seed{cfg.seed}", f"s{cfg.seed}", value_text(cfg.lr)}
    texts = [info.id.lower(), str(notes.get("note", "")).lower(), str(info.error or "").lower()]
    return tokens, "\n".join(texts)
