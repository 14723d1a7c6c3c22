"""``study``: a search over settings whose trials are runs (core/study).

    study NAME --space lr=log:1e-4:1e-1 --space optimizer=sgd,adam --trials 40 --val-split 5000 [train flags]
    study NAME                      continue it (its settings are in its storage)
    study show NAME [--json]        its trials: state, parameters, epochs, values, runs
    study confirm NAME --top 3 --seeds 1-3    the best settings again with seeds; their test error is the result

Bad input (a space, a flag, a missing --val-split) exits 2 before anything is created, the storage included.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cli.common import EXIT_OK, CliError, flag
from cli.folder import resume_prog, runs_dir_arg, store_of
from cli.training import check_data, config_from_args
from core.spec.grid import parse_ints
from core.study.spec import OBJECTIVES, PRUNERS, SAMPLERS, StudySpec, load, remember_storage, storage_of
from core.study.spec import new_spec as make_spec


def add_study_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("study (see docs/sweeps-and-studies.md)")
    g.add_argument("words", metavar="NAME | show NAME | confirm NAME", nargs="+",
                   help="start or continue the study NAME; `show NAME` lists its trials; `confirm NAME` trains its "
                        "best settings again with --seeds")
    g.add_argument("--space", metavar="FIELD=RANGE", action="append", default=[],
                   help="a setting to search: log:1e-4:1e-1 (log scale), 0:0.5 (linear), 8:32:8 (a step), or "
                        "choices sgd,adam (any setting a --sweep takes; repeatable)")
    g.add_argument("--trials", metavar="N", type=int, help="trials in all [default: 20; continuing: as before]")
    g.add_argument("--sampler", metavar="|".join(SAMPLERS), default="tpe",
                   help="Optuna's sampler: tpe, random, grid (choices only), cmaes, nsga2 [default: tpe]")
    g.add_argument("--sampler-seed", metavar="N", type=int, help="the sampler's seed (the same trials again)")
    g.add_argument("--pruner", metavar="|".join(PRUNERS), default="asha",
                   help="asha: stop the bottom of each rung with its checkpoint, resume it if promoted later; median: "
                        "Optuna's MedianPruner; none [default: asha]")
    g.add_argument("--min-epochs", metavar="N", type=int, default=1, help="the first rung's epoch [default: 1]")
    g.add_argument("--eta", metavar="N", type=int, default=3,
                   help="rungs at min-epochs x eta^k; the top 1/eta of a rung goes on [default: 3]")
    g.add_argument("--objective", metavar="|".join(OBJECTIVES), action="append", default=[],
                   help="what to minimise: val_err (validation error, %%) and/or train_time (seconds); two give a "
                        "Pareto front [default: val_err]")
    g.add_argument("--storage", metavar="URL", help="an Optuna storage: sqlite:///FILE, postgresql://..., or "
                   "journal:PATH (a journal file several processes share) [default: RUNS/studies.db]")
    g.add_argument("--json", action="store_true", help="show: print the study as JSON")
    g.add_argument("--top", metavar="K", type=int, default=3, help="confirm: the K best trials [default: 3]")
    g.add_argument("--seeds", metavar="LIST", default="1-3", help="confirm: seeds, e.g. 1-3 [default: 1-3]")


def cmd_study(args: argparse.Namespace) -> int:
    words = args.words
    if words[0] in ("show", "confirm") and len(words) == 2:
        return {"show": study_show, "confirm": study_confirm}[words[0]](args, words[1])
    if len(words) != 1:
        raise CliError(f"expected NAME, show NAME or confirm NAME, got {' '.join(words)}")
    return study_run(args, words[0])


# -- storage -----------------------------------------------------------------------------------------------------------
def exists(name: str, url: str) -> bool:
    """Whether the study is in the storage, without creating a storage that is not there yet."""
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix) and not Path(url.removeprefix(prefix)).expanduser().exists():
            return False
    import optuna

    from core.study.spec import open_storage

    return name in [s.study_name for s in optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)]


def opened(args: argparse.Namespace, name: str):
    store = store_of(args)
    url = args.storage or storage_of(store.root, name)
    if not exists(name, url):
        raise CliError(f"NAME: no study {name!r} in {url}; start one with: {resume_prog()} study {name} --space ... "
                       f"--val-split N {runs_dir_arg(store)}")
    study, spec = load(name, url)
    return store, url, study, spec


# -- study NAME --------------------------------------------------------------------------------------------------------
def new_spec(args: argparse.Namespace, name: str) -> StudySpec:
    """The StudySpec the flags describe, every part checked. Raises CliError naming the flag (exit 2)."""
    if args.cfg_name is not None or args.cfg_sweep_name is not None:
        raise CliError(f"{flag('name')}: a study names its runs NAME-tN itself")
    base = config_from_args(args)
    spec, errors = make_spec(name, base, args.space, trials=args.trials or 20, sampler=args.sampler,
                             pruner=args.pruner, min_epochs=args.min_epochs, eta=args.eta,
                             objectives=args.objective or ["val_err"], sampler_seed=args.sampler_seed)
    if "--space" in errors:                          # its text names the flag and the setting
        raise CliError(errors["--space"])
    if errors:
        raise CliError("; ".join(f"{k}: {v}" for k, v in errors.items()))
    check_data(base)
    return spec


def study_run(args: argparse.Namespace, name: str) -> int:
    from cli.queue import scheduler_options, start_scheduler
    from core.serve import scheduler_control as S
    from core.study.driver import StudyDriver

    store = store_of(args, new_runs=True)
    url = args.storage or storage_of(store.root, name)
    options = scheduler_options(args)[1]
    given = [k for k, v in vars(args).items() if k.startswith("cfg_") and v is not None]
    if exists(name, url):
        if args.space or given or args.preset or args.config:
            raise CliError(f"NAME: study {name!r} exists in {url}; `study {name}` alone continues it with its own "
                           f"settings (--trials N extends it); give another name for a new study")
        study, spec = load(name, url)
        if args.trials and args.trials != spec.trials:
            spec = StudySpec.from_dict({**spec.to_dict(), "trials": args.trials})
            study.set_user_attr("reslab", spec.to_dict())
        print(f"continuing study {name}: {len(study.trials)} of {spec.trials} trials asked for so far")
    else:
        spec = new_spec(args, name)
        store.root.mkdir(parents=True, exist_ok=True)
        study, spec = load(name, url, spec)
        print(f"study {name}: {spec.budget_text()}; storage {url}")
    if args.storage:
        remember_storage(store.root, name, url)   # the TUI's study screen finds it there
    state = S.read_state(store.root)
    slots = len(state.get("slots") or [None]) if state else len(scheduler_options(args)[0])

    def ensure_scheduler() -> None:
        if S.read_state(store.root) is None:
            print(start_scheduler(store, options), flush=True)

    driver = StudyDriver(store, study, spec, url, slots=slots, echo=lambda line: print(line, flush=True))
    try:
        driver.run(each_tick=ensure_scheduler)
    except KeyboardInterrupt:
        print(f"\nthe driver left; queued and training trials go on in the scheduler. Continue with: "
              f"{resume_prog()} study {name} {runs_dir_arg(store)}", file=sys.stderr)
        return 130
    print_best(study, spec)
    print(f"study {name} done. {resume_prog()} study show {name} {runs_dir_arg(store)} lists its trials; "
          f"{resume_prog()} report --study {name} {runs_dir_arg(store)} writes its report")
    return EXIT_OK


def print_best(study, spec: StudySpec) -> None:
    from core.study.summary import best_trials

    for t in best_trials(study):
        values = ", ".join(f"{o} {v:.4g}" for o, v in zip(spec.objectives, t.values))
        print(f"best: trial {t.number} ({t.user_attrs.get('run_id')}): {values}; {t.params}")


# -- study show / confirm ----------------------------------------------------------------------------------------------
def study_show(args: argparse.Namespace, name: str) -> int:
    from core.study.summary import summary

    store, url, study, spec = opened(args, name)
    data = summary(store, study, spec, url)
    if args.json:
        json.dump(data, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return EXIT_OK
    print(f"study {name}: {spec.budget_text()}; objective {', '.join(spec.objectives)}; storage {url}")
    print(f"{'trial':>5}  {'state':<9} {'epochs':>7} {'values':<18} {'run':<24} params")
    for t in data["trials"]:
        values = " ".join(f"{v:.4g}" for v in t["values"] or []) or "-"
        epochs = f"{t['epochs']}/{spec.epochs}"
        params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
        print(f"{t['number']:>5}  {t['state']:<9} {epochs:>7} {values:<18} {str(t['run'] or '-'):<24} {params}"
              + (f"  ({t['note']})" if t["note"] else ""))
    for b in data["best"]:
        print(f"best: trial {b['number']}: {' '.join(f'{v:.4g}' for v in b['values'])}")
    return EXIT_OK


def study_confirm(args: argparse.Namespace, name: str) -> int:
    from cli.queue import scheduler_options, start_scheduler
    from core.serve import queue as Q
    from core.serve import scheduler as S
    from core.study.summary import confirm_configs

    store, url, study, spec = opened(args, name)
    try:
        seeds = parse_ints(args.seeds, "seed", "1,2,3")
    except ValueError as exc:
        raise CliError(f"--seeds: {exc}") from None
    if args.top < 1:
        raise CliError(f"--top: must be 1 or more, got {args.top}")
    configs = confirm_configs(store, study, spec, args.top, seeds)
    if not configs:
        raise CliError(f"NAME: study {name} has no finished trial to confirm yet", 1)
    options = scheduler_options(args)[1]
    for run in Q.enqueue(store, configs):
        print(f"queued {run.id}")
    if S.read_state(store.root) is None:
        print(start_scheduler(store, options))
    print(f"when they are done: {resume_prog()} report --study {name} {runs_dir_arg(store)} (their test error, "
          f"mean ± std over seeds: chosen on validation, measured on test)")
    return EXIT_OK


# -- report --study ----------------------------------------------------------------------------------------------------
def report_study(args: argparse.Namespace) -> int:
    """`report --study NAME [--out DIR]`: the study's figures and report.md (core/results/study_report.py)."""
    import time

    from core.results.study_report import write_study_report
    from core.study.summary import summary

    if args.runs or args.all or args.sweep:
        raise CliError("--study: it picks the runs itself; give it without run ids, --all or --sweep")
    store, url, study, spec = opened(args, args.study)
    out = Path(args.out) if args.out else store.root.resolve().parent / "reports" / \
        f"study-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for path in write_study_report(store, study, spec, summary(store, study, spec, url), out):
        print(f"wrote {path}")
    return EXIT_OK


def cmd_runs_study(args: argparse.Namespace) -> int:
    """``runs --study NAME``: the study's trials (and confirmed runs), with what varies between them."""
    from cli.tables import render_runs, varied_rows

    store = store_of(args)
    infos = [i for i in store.list() if i.config is not None and i.config.study == args.study]
    render_runs(varied_rows(infos), args.format, sys.stdout, store.root)
    return EXIT_OK
