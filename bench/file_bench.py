"""Export and import through a file: `dbcopy export` + `dbcopy import` against `dumpdata` + `loaddata`.

run.py runs it when METHODS includes `export-import`, on the same source as the copy methods:

1. once, from the source: `dumpdata … -o FILE.json` and `dbcopy export -o FILE.dbcopy`, each timed, with
   its peak RSS and the size of what it wrote (the JSON's gzip -6 and zstd -3 sizes too, for fairness:
   the dump is compressed, dumpdata's JSON is not, and plain JSON is what teams ship);
2. for each target, each on a freshly migrated destination: `loaddata FILE.json`, then
   `dbcopy import FILE.dbcopy --no-input`, then the two commands joined by a pipe
   (`dbcopy export -o - | dbcopy import -`), each timed and verified: exit status 0, every table's
   count equal to the source's and, for dbcopy, every column of every row equal (content.py, without
   dbcopy). loaddata is held to the counts only: dumpdata's JSON keeps datetimes to the millisecond, so
   its content differs by design (the timestamps column says so).

End to end per target is the writer's time plus the reader's: the ratio (dumpdata + loaddata) ÷ (export +
import) is held to ≥ 10×, and the dump's size to ≤ 1/4 of dumpdata's JSON.
"""

import gzip
import shlex
import time

import zstandard

import content
import dataset
from dataset import SOURCE
from harness import MANAGE, OUT_DIR, REPO_DIR, checkpoint, log_tail, measure, reset, stamp_check

# dumpdata as teams run it to move a database: natural keys, and the rows `migrate` creates left out.
DUMPDATA_OPTIONS = ["--natural-foreign", "--natural-primary", "-e", "contenttypes", "-e", "auth.permission"]
ROUTES = {
    "dumpdata": "dumpdata → JSON file → loaddata",
    "file": "dbcopy export → file → import",
    "pipe": "dbcopy export -o - \\| import -",
}
TARGET_SPEEDUP, TARGET_SIZE = 10, 0.25  # export + import at least 10× faster; the dump at most 1/4 of the JSON
SIDES = {"dumpdata": ("dumpdata", "loaddata"), "file": ("export", "import")}


def run(targets, tables, names, keep=False):
    """Write both files once, read each into every target; return the figures of every route."""
    source_rows = dataset.count_rows(SOURCE, tables)
    source_stamps = dataset.timestamps(SOURCE)
    json_path, dump_path = OUT_DIR / "file-dumpdata.json", OUT_DIR / "file-export.dbcopy"
    print("Export and import through a file: the writers, once", flush=True)
    writers = {
        "dumpdata": timed("source", "dumpdata", dumpdata_command(json_path)),
        "export": timed("source", "export", export_command(dump_path)),
    }
    sizes = file_sizes(json_path, dump_path, writers)
    runs = []
    for target in targets:
        print(f"{names[target]}: export and import through a file", flush=True)
        readers = {}
        for reader, argv in (("loaddata", loaddata_command(json_path, target)),
                             ("import", import_command(dump_path, target)),
                             ("pipe", pipe_command(target))):
            reset(target)
            readers[reader] = timed(target, reader, argv)
            readers[reader].update(verify(target, reader, readers[reader]["exit"], tables, source_rows, source_stamps))
        runs.append({"target": target, **readers})
    if not keep:
        for path in (json_path, dump_path):
            path.unlink(missing_ok=True)
    return {"source_rows": sum(source_rows.values()), "writers": writers, "sizes": sizes, "runs": runs}


def dumpdata_command(path):
    """Return the argv of dumpdata writing the whole source to a JSON file."""
    return [*MANAGE, "dumpdata", "--database", SOURCE, *DUMPDATA_OPTIONS, "-o", _relative(path)]


def loaddata_command(path, target):
    """Return the argv of loaddata reading the JSON file into the target."""
    return [*MANAGE, "loaddata", "--database", target, _relative(path)]


def export_command(path, output=None):
    """Return the argv of `dbcopy export` writing every model of the source to the dump file."""
    return [*MANAGE, "dbcopy", "export", "--source", SOURCE, "-o", output or _relative(path), "-v", "1"]


def import_command(path, target):
    """Return the argv of `dbcopy import` reading the dump (a path, or - for standard input) into the target."""
    route = "pipe" if path == "-" else "import"
    return [*MANAGE, "dbcopy", "import", path if path == "-" else _relative(path), "--dest", target,
            "--no-input", "--report-json", _relative(OUT_DIR / f"{target}-file-{route}.json"), "-v", "1"]


def pipe_command(target):
    """Return the argv of export piped into import: no file on disk, both processes at once."""
    export = export_command(None, output="-")
    return ["bash", "-c", f"set -o pipefail; {shlex.join(export)} | {shlex.join(import_command('-', target))}"]


def _relative(path):
    return str(path.relative_to(REPO_DIR))


def timed(where, step, argv):
    """Run one command timed (after a checkpoint of the source); print and return its figures."""
    checkpoint(SOURCE)
    shown = shlex.join(argv).replace(MANAGE[0], "python")  # the venv's interpreter, inside `bash -c` too
    print(f"  {step}: $ {shown}", flush=True)
    log_path = OUT_DIR / f"{where}-file-{step}.log"
    seconds, rss, status = measure(argv, log_path)
    print(f"  {seconds:.1f} s, peak RSS {rss:.0f} MB, exit {status}", flush=True)
    if status != 0:
        log_tail(log_path)
    return {"seconds": seconds, "rss_mb": rss, "exit": status, "command": shown}


def file_sizes(json_path, dump_path, writers):
    """Return the bytes of the JSON file (plain, gzip -6, zstd -3) and of the dump, where they were written."""
    sizes = {}
    if writers["dumpdata"]["exit"] == 0:
        sizes["json"] = json_path.stat().st_size
        sizes["json_gzip"], sizes["json_zstd"] = compressed_sizes(json_path)
    if writers["export"]["exit"] == 0:
        sizes["dump"] = dump_path.stat().st_size
    shown = ", ".join(f"{name} {size:,}" for name, size in sizes.items())
    print(f"  file sizes in bytes: {shown}", flush=True)
    return sizes


class _ByteCounter:
    """A write-only stream that counts what it is given."""

    def __init__(self):
        self.bytes = 0

    def write(self, data):
        self.bytes += len(data)
        return len(data)

    def flush(self):
        pass


def compressed_sizes(path, block=1 << 20):
    """Return the sizes of the file compressed by gzip -6 and by zstd -3, streamed (the file may be large)."""
    gzipped, zstded = _ByteCounter(), _ByteCounter()
    with open(path, "rb") as source, gzip.GzipFile(fileobj=gzipped, mode="wb", compresslevel=6) as gz, \
            zstandard.ZstdCompressor(level=3).stream_writer(zstded, closefd=False) as zst:
        while data := source.read(block):
            gz.write(data)
            zst.write(data)
    return gzipped.bytes, zstded.bytes


def verify(target, reader, status, tables, source_rows, source_stamps):
    """Return the reader's problems: exit status, counts, and (dbcopy's routes) every row's content."""
    problems = [f"exit {status}"] if status else []
    dest_rows = dataset.count_rows(target, tables)
    differ = [f"{t} {source_rows[t]}≠{dest_rows[t]}" for t in tables if dest_rows[t] != source_rows[t]]
    if differ:
        problems.append("counts " + ", ".join(differ))
    stamps = stamp_check(dataset.timestamps(target), source_stamps)
    checked = "counts"
    if reader != "loaddata" and not problems:
        started = time.perf_counter()
        found, compared = content.differences(SOURCE, target, tables)
        problems += [f"content of {table}: {n if n is not None else 'all'} rows differ (first: "
                     f"{', '.join(map(str, first))})" for table, (n, first) in found.items()]
        checked = f"counts; every column of {compared:,} rows"
        print(f"  content: {compared:,} source rows compared in every column, "
              f"{time.perf_counter() - started:.1f} s, {len(found)} tables differ", flush=True)
    print(f"  verified ({checked}): {'ok' if not problems else '; '.join(problems)}; timestamps {stamps}",
          flush=True)
    return {"problems": problems, "checked": checked, "stamps": stamps}


def route_figures(summary, run, route):
    """Return (writer figures or None, reader figures) of a route on one target."""
    if route == "pipe":
        return None, run["pipe"]
    writer, reader = SIDES[route]
    return summary["writers"][writer], run[reader]


def end_to_end(summary, run, route):
    """Return the route's seconds from the source to a loaded target, or None if a side failed."""
    writer, reader = route_figures(summary, run, route)
    if (writer and writer["exit"]) or reader["exit"] or reader["problems"]:
        return None
    return reader["seconds"] + (writer["seconds"] if writer else 0)


def print_results(summary, names, command):
    """Print the routes per target as a Markdown table, the file sizes and the ratios to dumpdata."""
    sizes = summary["sizes"]
    print(f"\n## Export and import through a file ({summary['source_rows']:,} rows)\n")
    print(f"`{command}`; the writers ran once, each reader on a freshly migrated target. Writer and reader "
          "are separate processes, each with its own peak RSS; the pipe runs both at once (its RSS is the "
          "larger process's).\n")
    print("| target | route | write s | read s | end to end s | writer peak RSS MB | reader peak RSS MB | "
          "file bytes | timestamps | verified |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    file_bytes = {"dumpdata": sizes.get("json"), "file": sizes.get("dump"), "pipe": None}
    for run in summary["runs"]:
        for route in ROUTES:
            writer, reader = route_figures(summary, run, route)
            total = end_to_end(summary, run, route)
            verified = (f"ok ({reader['checked']})" if not reader["problems"]
                        else "**FAILED** (" + "; ".join(reader["problems"]) + ")")
            print(f"| {names[run['target']]} | {ROUTES[route]} | {_seconds(writer)} | {_seconds(reader)} | "
                  f"{_number(total, '.1f')} | {_number(writer and writer['rss_mb'])} | {reader['rss_mb']:.0f} | "
                  f"{_number(file_bytes[route], ',')} | {reader['stamps']} | {verified} |")
    if "json" in sizes:
        dump = f" The dump (zstd -3 inside): {sizes['dump']:,} bytes." if "dump" in sizes else ""
        print(f"\ndumpdata's JSON: {sizes['json']:,} bytes; gzip -6 {sizes['json_gzip']:,}, zstd -3 "
              f"{sizes['json_zstd']:,}.{dump}")
    print("\n| target | (dumpdata + loaddata) ÷ (export + import) | ÷ (export \\| import) | JSON ÷ dump | "
          "JSON gzip ÷ dump | JSON zstd ÷ dump |")
    print("|---|---:|---:|---:|---:|---:|")
    for run in summary["runs"]:
        print(f"| {names[run['target']]} | {_ratio(speedup(summary, run, 'file'))} | "
              f"{_ratio(speedup(summary, run, 'pipe'))} | {_ratio(size_ratio(sizes, 'json'))} | "
              f"{_ratio(size_ratio(sizes, 'json_gzip'))} | {_ratio(size_ratio(sizes, 'json_zstd'))} |")


def speedup(summary, run, route):
    """Return dumpdata + loaddata's end-to-end time ÷ the route's, or None where either failed."""
    theirs, ours = end_to_end(summary, run, "dumpdata"), end_to_end(summary, run, route)
    return theirs / ours if theirs and ours else None


def size_ratio(sizes, json_kind):
    """Return the size of dumpdata's JSON (plain or compressed) ÷ the dump's, or None."""
    return sizes[json_kind] / sizes["dump"] if json_kind in sizes and sizes.get("dump") else None


def _ratio(value):
    if value is None:
        return "–"
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"  # 1.26× and 1.24× are not both "1.3×"


def _seconds(figures):
    return f"{figures['seconds']:.1f}" if figures else "–"


def _number(value, spec=".0f"):
    return format(value, spec) if value is not None else "–"


def print_targets(summary, names):
    """Check the targets: export + import ≥ 10× faster than dumpdata + loaddata, dump ≤ 1/4 of the JSON."""
    print("\n## Export and import targets\n")
    for run in summary["runs"]:
        name = names[run["target"]]
        value = speedup(summary, run, "file")
        shown = f"{value:.1f}×" if value is not None else "not measured"
        print(f"- {'met' if value and value >= TARGET_SPEEDUP else '**MISSED**'}: {name} export + import "
              f"≥ {TARGET_SPEEDUP}× faster than dumpdata + loaddata end to end: {shown}")
        equal = not run["import"]["problems"] and not run["pipe"]["problems"]
        print(f"- {'met' if equal else '**MISSED**'}: {name} destination equal to the source after the import "
              f"(file and pipe)")
    ratio = size_ratio(summary["sizes"], "json")
    shown = f"{1 / ratio:.1%} of it ({ratio:.1f}× smaller)" if ratio else "not measured"
    print(f"- {'met' if ratio and 1 / ratio <= TARGET_SIZE else '**MISSED**'}: dump ≤ 1/4 of dumpdata's JSON: "
          f"{shown}")


def failed(summary):
    """Tell whether a writer or a reader failed, or left a destination unequal to the source."""
    writers = any(figures["exit"] for figures in summary["writers"].values())
    readers = ("loaddata", "import", "pipe")
    return writers or any(run[reader]["problems"] for run in summary["runs"] for reader in readers)
