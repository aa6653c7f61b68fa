"""Count every planned table on both sides (and, on request, digest its content) and say whether it
arrived; print nothing."""

from dataclasses import asdict, dataclass, replace

from django.db import DatabaseError

from .aliases import describe
from .content import DIFFERS, not_checked
from .diagnose import first_line
from .plan import REMAP
from .results import SUCCESSFUL, Status

OK, MISMATCH, SKIPPED, FAILED = Status.OK, Status.MISMATCH, Status.SKIPPED, Status.FAILED


@dataclass(frozen=True)
class Reconciliation:
    model: str
    table: str
    dest: str | None
    source_rows: int | None
    dest_rows: int | None
    copied_rows: int | None
    status: str
    reason: str = ""
    seconds: float | None = None
    dest_rows_before: int | None = None
    method: str | None = None
    inserted: int | None = None
    updated: int | None = None
    deleted: int | None = None
    unchanged: int | None = None
    watermark: str | None = None
    retries: int | None = None
    resumed_rows: int | None = None
    content: object = None  # a content.ContentCheck; None when content was not asked for

    def as_dict(self):
        data = asdict(self)
        data["status"] = str(self.status)
        data["content"] = self.content.as_dict() if self.content is not None else None
        return data


def count(model, alias):
    return model._base_manager.using(alias).count()


class Reconciliations(list):
    """The Reconciliation rows of a run, plus the number of abstract models the plan counted.

    Abstract models have no table, so they get no row; reports print their count instead.
    """

    abstract_count = 0


def reconcile(plan, result=None, content=None):
    """Return one Reconciliation per step (and per skipped model), comparing row counts.

    content: a content.ContentChecker to digest each table's rows on both sides too (--checksum,
    --verify); a table whose content differs is a MISMATCH even where the counts agree.
    """
    rows = Reconciliations()
    for step in plan.steps:
        row = _reconcile_step(step, result and result.for_step(step))
        rows.append(row if content is None else _with_content(row, step, content))
    skipped_content = None if content is None else not_checked("skipped by the plan")
    rows += [
        Reconciliation(s.label, s.table, s.dest and describe_dest(s.dest), None, None, None, SKIPPED, s.reason,
                       content=skipped_content)
        for s in plan.skipped
    ]
    rows.abstract_count = plan.abstract_count
    return rows


def describe_dest(alias):
    """Name a destination in reports: its alias, or its masked URL for an alias made from a URL."""
    text = describe(alias)
    return alias if text.startswith(f"{alias} (") else text


def _reconcile_step(step, step_result):
    row = _count_step(step, step_result)
    counts = getattr(step_result, "counts", None)
    if counts is None:
        return row
    extra = {
        "inserted": counts.inserted, "updated": counts.updated, "deleted": counts.deleted,
        "unchanged": counts.unchanged,
        "watermark": counts.watermark.isoformat() if counts.watermark is not None else None,
    }
    if counts.gone and row.status == MISMATCH:
        extra["reason"] = f"{counts.gone:,} rows are no longer at the source: pass --deletes to delete them"
    return replace(row, **extra)


def _count_step(step, step_result):
    dest = describe_dest(step.dest)
    copied = step_result.copied if step_result else None
    seconds = round(step_result.seconds, 3) if step_result else None
    method = step_result.method if step_result else None
    extra = {}
    if step_result:
        extra = {"retries": step_result.retries, "resumed_rows": step_result.resumed_rows or None}
    try:
        # The rows the run read (its snapshot of the source), where it counted them.
        source_rows = step_result.source_rows if step_result and step_result.source_rows is not None else None
        if source_rows is None or step.kind == REMAP:
            source_rows = count(step.model, step.source)
        dest_rows = _counted_dest_rows(step_result)
        if dest_rows is None:
            dest_rows = count(step.model, step.dest)
    except DatabaseError as exc:
        return Reconciliation(step.label, step.table, dest, None, None, copied, FAILED,
                              f"cannot count rows: {first_line(exc)}", seconds, **extra)
    row = Reconciliation(step.label, step.table, dest, source_rows, dest_rows, copied, OK, "", seconds, None, method, **extra)
    if step_result and step_result.status not in (Status.OK, Status.MISMATCH):
        return replace(row, status=step_result.status, reason=step_result.message)
    try:
        if step.kind == REMAP:
            missing = _missing_natural_keys(step)
            status = OK if not missing else MISMATCH
            reason = "matched by natural key; ids translated" if not missing else f"{missing} source rows have no match"
            return replace(row, status=status, reason=reason)
        unset = _unset_deferred_references(step, step_result) if dest_rows == source_rows else ""
    except DatabaseError as exc:
        return replace(row, status=FAILED, reason=f"cannot compare: {first_line(exc)}")
    # After --append the rows already there count too; a sync makes the table equal the source's.
    before = step_result.dest_rows_before if step_result and step_result.counts is None else 0
    expected = source_rows + before
    status = OK if dest_rows == expected and not unset else MISMATCH
    if status == OK:
        reason = f"{before:,} rows were already there (--append)" if before else ""
        if step_result and step_result.resumed_rows:
            reason = f"{step_result.resumed_rows:,} rows were copied by the interrupted run (--resume)"
    elif unset:
        reason = unset
    else:
        reason = f"expected {expected:,}" + (f" ({source_rows:,} copied + {before:,} already there)" if before else "")
    return replace(row, status=status, reason=reason, dest_rows_before=before)


def _counted_dest_rows(step_result):
    """Return the destination's rows as a sync's digest counted them, if the run inserted and deleted
    nothing since (updates leave the count as it is); else None."""
    measured = getattr(step_result, "dest_count", None)
    if measured is None or step_result.counts is None:
        return None
    rows, inserted, deleted = measured
    counts = step_result.counts
    return rows if (counts.inserted, counts.deleted) == (inserted, deleted) else None


def _with_content(row, step, checker):
    """Add the step's ContentCheck to its row; differing content makes it a MISMATCH."""
    if row.status not in (OK, MISMATCH):
        return replace(row, content=not_checked(f"the table's status is {row.status}"))
    if row.dest_rows_before:
        # --append: the rows already there are the destination's own, not a difference to report.
        return replace(row, content=not_checked(f"{row.dest_rows_before:,} rows were already there (--append)"))
    check = checker.check(step)
    if check.error:
        return replace(row, content=check, status=FAILED, reason=_joined(row.reason, check.reason))
    if check.status is DIFFERS:
        noun = "row" if check.differing_rows == 1 else "rows"
        reason = _joined(row.reason, f"content differs: {check.differing_rows:,} {noun} (see below)")
        return replace(row, content=check, status=MISMATCH, reason=reason)
    return replace(row, content=check)


def _joined(*reasons):
    return "; ".join(r for r in reasons if r)


def _unset_deferred_references(step, step_result=None):
    """Say which cycle-breaking FKs are still NULL at the destination where the source has a value.

    Matching counts prove nothing here: an interrupted or failed copy leaves these columns NULL.
    """
    problems = []
    counted = getattr(step_result, "source_deferred", None) or {}
    for field in step.deferred_fields:
        filled = {f"{field.attname}__isnull": False}
        at_source = counted.get(field.attname)
        if at_source is None:
            at_source = step.model._base_manager.using(step.source).filter(**filled).count()
        at_dest = step.model._base_manager.using(step.dest).filter(**filled).count()
        if at_dest < at_source:
            problems.append(f"{at_source - at_dest:,} rows have no {field.name} yet")
    if problems:
        again = "import THE_DUMP --resume" if step_result is not None and step_result.source_deferred is not None \
            else "copy --resume"
        return "; ".join(problems) + f" (the pass that sets it did not finish: run `dbcopy {again}`)"
    return ""


def _missing_natural_keys(step):
    """Count source content types / permissions with no row of the same natural key at the destination."""
    def keys(alias):
        qs = step.model._base_manager.using(alias)
        if step.model._meta.label_lower == "auth.permission":
            return set(qs.values_list("codename", "content_type__app_label", "content_type__model"))
        return set(qs.values_list("app_label", "model"))

    return len(keys(step.source) - keys(step.dest))


def is_ok(rows):
    return all(row.status in SUCCESSFUL for row in rows)


def failing(rows, status):
    """Return the labels of the rows with this status."""
    return [row.model for row in rows if row.status == status]
