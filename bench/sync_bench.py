"""The sync benchmark: what a scheduled `dbcopy sync` costs next to the full copy it keeps up to date.

run.py runs it after the copy methods when METHODS includes `sync` (the default), on the same source:

1. for each target: a freshly migrated destination, `dbcopy copy` (timed), then
   `dbcopy sync --since-field updated_at --deletes` with nothing changed (the quiet sync, timed);
2. the change set of changeset.py on the source, once for every target (~1 % of the rows: identifier
   updates, inserts and deletes, edits to Target, which has no timestamp, admin log entries);
3. for each target: the same sync again (timed), then the check that the destination equals the
   source: `dbcopy compare` (row counts; with `--checksum` where this dbcopy has it) and content.py,
   which reads every row of both sides without dbcopy.

Identifier is synced by its `updated_at`; Target and LogEntry have no such field and are compared in
full, which is what the targets are about: a quiet sync within 0.25× the copy's time, the sync after
1 % of changes within 0.35×. The bench settings define no DBCOPY_SYNC_FIELDS.
"""

import json
import shlex
import subprocess
import time

import changeset
import content
import dataset
from dataset import SOURCE
from harness import MANAGE, OUT_DIR, REPO_DIR, checkpoint, log_tail, measure, reset

SYNC_OPTIONS = ["--since-field", "updated_at", "--deletes"]
CEILINGS = {"quiet": 0.25, "changed": 0.35}  # the sync's time ÷ the full copy's, at most
PHASES = {"copy": "copy", "quiet": "quiet sync", "changed": "sync after the change set"}


def run(targets, scale, tables, names):
    """Time copy, quiet sync and the sync after the change set on every target; return the summary."""
    runs = {target: {"target": target, "problems": []} for target in targets}
    for target in targets:
        print(f"{names[target]}: sync benchmark", flush=True)
        reset(target)
        run = runs[target]
        run["copy"] = timed(target, "copy", copy_command(target))
        if run["copy"]["exit"]:
            run["problems"].append(f"copy exit {run['copy']['exit']}")
            continue
        run["problems"] += count_problems(target, tables, "after the copy")
        run["quiet"] = timed(target, "quiet", sync_command(target, "quiet"))
    source_rows = sum(dataset.count_rows(SOURCE, tables).values())
    started = time.perf_counter()
    changed = changeset.apply(SOURCE, scale)
    checkpoint(SOURCE)
    print(f"Change set applied to the source in {time.perf_counter() - started:.1f} s: "
          f"{', '.join(f'{n:,} {kind}' for kind, n in changed.items())}.", flush=True)
    for target in targets:
        run = runs[target]
        if "quiet" not in run:
            continue
        run["changed"] = timed(target, "changed", sync_command(target, "changed"))
        run["problems"] += [f"{PHASES[p]} exit {run[p]['exit']}" for p in ("quiet", "changed") if run[p]["exit"]]
        run["verification"] = verify(target, tables)
        run["problems"] += run["verification"]["problems"]
        print(f"  verified: {'ok' if not run['problems'] else '; '.join(run['problems'])}", flush=True)
    return {"scale": scale, "changes": changed, "changed_rows": sum(changed.values()),
            "source_rows": source_rows, "runs": list(runs.values())}


def copy_command(target):
    """Return the argv of the full copy the syncs are measured against (dbcopy fast, as run.py times it)."""
    return [*MANAGE, "dbcopy", "copy", "--source", SOURCE, "--dest", target, "--no-input", "--writer", "fast",
            "--report-json", _relative(report_path(target, "copy")), "-v", "1"]


def sync_command(target, phase):
    """Return the argv of the scheduled sync."""
    return [*MANAGE, "dbcopy", "sync", "--source", SOURCE, "--dest", target, *SYNC_OPTIONS,
            "--report-json", _relative(report_path(target, phase)), "-v", "1"]


def report_path(target, phase):
    return OUT_DIR / f"{target}-sync-{phase}.json"


def _relative(path):
    return str(path.relative_to(REPO_DIR))


def timed(target, phase, argv):
    """Settle the databases, run one command timed, print and return its figures and what it wrote."""
    checkpoint(SOURCE)
    checkpoint(target)
    print(f"  {PHASES[phase]}: $ {shlex.join(argv)}", flush=True)
    log_path = OUT_DIR / f"{target}-sync-{phase}.log"
    seconds, rss, status = measure(argv, log_path)
    figures = {"seconds": seconds, "rss_mb": rss, "exit": status,
               "command": shlex.join("python" if part == MANAGE[0] else part for part in argv)}
    if phase != "copy":
        figures.update(sync_work(report_path(target, phase)))
    note = ""
    if "written" in figures:
        note = (f"; wrote {figures['written']:,} rows ({_written(figures)}); slowest: "
                + ", ".join(f"{model} {s:.1f} s" for model, s in figures["slowest"])
                + f"; all models {figures['model_seconds']:.1f} s")
    print(f"  {seconds:.1f} s, peak RSS {rss:.0f} MB, exit {status}{note}", flush=True)
    if status != 0:
        log_tail(log_path)
    return figures


def sync_work(path):
    """Return what the sync's JSON report says it did: rows inserted, updated, deleted; slowest models."""
    try:
        models = json.loads(path.read_text())["models"]
    except (OSError, ValueError, KeyError):
        return {}
    work = {kind: sum(row.get(kind) or 0 for row in models) for kind in ("inserted", "updated", "deleted")}
    timed_models = sorted((row for row in models if row.get("seconds")), key=lambda row: -row["seconds"])
    work["written"] = sum(work.values())
    work["slowest"] = [(row["model"], row["seconds"]) for row in timed_models[:3]]
    # What the models' steps account for; the rest is start-up, the snapshot and the passes after them.
    work["model_seconds"] = sum(row["seconds"] for row in timed_models)
    return work


def _written(figures):
    return " / ".join(f"{figures[kind]:,}" for kind in ("inserted", "updated", "deleted")) + " ins/upd/del"


def count_problems(target, tables, when):
    """Return the tables whose row counts differ between the source and the target."""
    source, dest = dataset.count_rows(SOURCE, tables), dataset.count_rows(target, tables)
    differ = [f"{table} {source[table]}≠{dest[table]}" for table in tables if source[table] != dest[table]]
    return [f"counts {when}: " + ", ".join(differ)] if differ else []


def verify(target, tables):
    """Check the destination equals the source: dbcopy compare, then every row read without dbcopy."""
    checksum = has_checksum()
    argv = [*MANAGE, "dbcopy", "compare", "--source", SOURCE, "--dest", target, *(["--checksum"] if checksum else []),
            "--report-json", _relative(report_path(target, "compare")), "-v", "1"]
    log_path = OUT_DIR / f"{target}-sync-compare.log"
    seconds, _, status = measure(argv, log_path)
    what = "counts and checksums" if checksum else "counts"
    problems = [f"dbcopy compare ({what}) exit {status}"] if status else []
    print(f"  dbcopy compare ({what}): exit {status}, {seconds:.1f} s", flush=True)
    if status:
        log_tail(log_path)
    started = time.perf_counter()
    found, compared = content.differences(SOURCE, target, tables)
    for table, (differing, first) in found.items():
        problems.append(f"content of {table}: {differing if differing is not None else 'all'} rows differ "
                        f"(first: {', '.join(map(str, first))})")
    print(f"  content: {compared:,} source rows compared in every column, {time.perf_counter() - started:.1f} s, "
          f"{len(found)} tables differ", flush=True)
    return {"compare": what, "compare_exit": status, "compare_seconds": seconds, "rows_compared": compared,
            "problems": problems}


def has_checksum():
    """Tell whether this checkout's `dbcopy compare` takes --checksum (content digests on both sides)."""
    completed = subprocess.run([*MANAGE, "dbcopy", "--help"], cwd=REPO_DIR, capture_output=True, text=True)
    return "--checksum" in completed.stdout


def print_results(summary, names, command):
    """Print the sync benchmark as a Markdown table, with each sync's time relative to the copy's."""
    print(f"\n## Sync cost (SCALE={summary['scale']:g})\n")
    print(f"`{command}`; the syncs run `dbcopy sync --source default --dest TARGET {shlex.join(SYNC_OPTIONS)}`.\n")
    print(f"Change set, applied once to the source after the quiet syncs ({summary['changed_rows']:,} rows, "
          f"{summary['changed_rows'] / summary['source_rows']:.2%} of the {summary['source_rows']:,} rows before):\n")
    print("| change | rows |\n|---|---:|")
    for kind, rows in summary["changes"].items():
        print(f"| {kind} | {rows:,} |")
    expected = expected_writes(summary["changes"])
    print(f"\nA sync that writes exactly the changes writes {_written(expected)}; quiet, nothing.\n")
    print("| target | copy s | quiet sync s | quiet ÷ copy | 1 % sync s | 1 % ÷ copy | sync peak RSS MB | "
          "quiet sync wrote | 1 % sync wrote (ins/upd/del) | verified |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for run in summary["runs"]:
        copy, quiet, changed = run["copy"], run.get("quiet"), run.get("changed")
        rss = max((run[p]["rss_mb"] for p in ("quiet", "changed") if run.get(p)), default=None)
        check = run.get("verification", {})
        verified = (f"ok ({check['compare']} by dbcopy compare; every column of {check['rows_compared']:,} rows)"
                    if not run["problems"] else "**FAILED** (" + "; ".join(run["problems"]) + ")")
        print(f"| {names[run['target']]} | {copy['seconds']:.1f} | {_seconds(quiet)} | {ratio(run, 'quiet')} | "
              f"{_seconds(changed)} | {ratio(run, 'changed')} | {_number(rss)} | "
              f"{_number(quiet.get('written') if quiet else None)} | "
              f"{_written(changed) if changed and 'written' in changed else '–'} | {verified} |")


def expected_writes(changes):
    """Return the rows inserted, updated and deleted by the change set, as a sync's report counts them."""
    verbs = {"inserted": ("inserted",), "updated": ("updated", "edited"), "deleted": ("deleted",)}
    return {verb: sum(n for kind, n in changes.items() if kind.split()[-1] in words) for verb, words in verbs.items()}


def ratio(run, phase, text=True):
    """Return the phase's time ÷ the copy's (as text, or the number; None when either did not finish)."""
    if not run.get(phase) or run[phase]["exit"] or run["copy"]["exit"]:
        return "–" if text else None
    value = run[phase]["seconds"] / run["copy"]["seconds"]
    return f"{value:.2f}×" if text else value


def _seconds(figures):
    return f"{figures['seconds']:.1f}" if figures else "–"


def _number(value):
    return f"{value:.0f}" if value is not None else "–"


def print_targets(summary, names):
    """Check the sync targets: quiet ≤ 0.25× and 1 % ≤ 0.35× of the copy, destination equal afterwards."""
    print("\n## Sync targets\n")
    for run in summary["runs"]:
        for phase, ceiling in CEILINGS.items():
            value = ratio(run, phase, text=False)
            met = value is not None and value <= ceiling
            shown = f"{value:.2f}×" if value is not None else "not measured"
            print(f"- {'met' if met else '**MISSED**'}: {names[run['target']]} {PHASES[phase]} ≤ {ceiling}× "
                  f"the copy: {shown}")
        equal = not run["problems"]
        print(f"- {'met' if equal else '**MISSED**'}: {names[run['target']]} destination equal to the source "
              f"after the sync")


def failed(summary):
    """Tell whether any target's copy, syncs or verification failed."""
    return any(run["problems"] for run in summary["runs"])
