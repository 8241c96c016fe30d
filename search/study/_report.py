"""The end of a search run: the Pareto front, where the study lives, and what to run next."""

from __future__ import annotations

import shlex

import optuna

from runner.training.metrics import competition_score
from search.front import pareto_front, trial_f1
from search.study._study import finished_count


def front_table(study: optuna.Study) -> list[str]:
    """The feasible Pareto front as aligned text rows: F1, MACs, params (latency when measured),
    score."""
    front = pareto_front(study)
    if not front:
        return ["no feasible finished trial yet"]
    timed = any("latency_ms" in t.user_attrs for t in front)
    latency_head = f" {'latency':>9}" if timed else ""
    rows = [f"{'trial':>6} {'F1':>6} {'MACs':>12} {'params':>10}{latency_head} {'score':>7}"]
    for trial in front:
        attrs = trial.user_attrs
        f1 = trial_f1(trial)
        score = competition_score(attrs["macs"], f1)
        cost = f"{attrs['macs']:>12,} {attrs['params']:>10,}"
        if timed:
            cost += f" {attrs['latency_ms']:>6.2f} ms" if "latency_ms" in attrs else f" {'-':>9}"
        rows.append(f"{trial.number:>6} {f1:>6.3f} {cost} {score:>7.3f}")
    return rows


def summary_lines(study: optuna.Study, storage: str, interrupted: bool = False) -> list[str]:
    """Front, location, dashboard and export commands (the storage URL quoted for a shell)."""
    name, url = study.study_name, shlex.quote(storage)
    head = "interrupted; finished trials are kept" if interrupted else "search finished"
    return [
        f"{head}: {finished_count(study)} trials in study {name!r}",
        "Pareto front (feasible, best F1 first):",
        *(f"  {row}" for row in front_table(study)),
        f"study storage: {storage}",
        f"dashboard: optuna-dashboard {url} --host 127.0.0.1 --port 8080",
        f"export:    python -m search.export --study-name {shlex.quote(name)} --storage {url}",
        "resume:    rerun the same command (finished trials count toward --trials)",
    ]
