"""``gnn2gnn reproduce``: every sweep and task of a study file as one Ray queue, then the
report (tables, figures, ``report.md`` and a self-contained ``report.html``).

The report is written by the ``gnn2gnn.report`` entry point (the analysis package's study
report); the core only hands it the results location and the study's record.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from pipeline.cli.common import add_forward_credentials, log
from pipeline.config import PROFILES
from pipeline.errors import UserError
from pipeline.plugins import load_group

STUDY = "sweeps/papers.yaml"
REPORT_GROUP = "gnn2gnn.report"


def _tee(path: Path | None):
    """``log``, and each line appended to ``path`` too (the study's progress log)."""
    if path is None:
        return log
    path.parent.mkdir(parents=True, exist_ok=True)

    def both(line: str) -> None:
        log(line)
        with path.open("a") as f:
            f.write(f"{time.time():.1f} {line}\n")

    return both


def results_fingerprint(results, folders: list[str]) -> str:
    """sha256 (12 hex) over every sweep folder's fingerprint under ``folders``."""
    from pipeline.store.location import Location
    from pipeline.store.results import fingerprint, sweep_folders

    digest = hashlib.sha256()
    for name in sorted(folders):
        for folder in sweep_folders(Location.of(results) / name):
            digest.update(f"{name}/{folder.name}={fingerprint(folder)}".encode())
    return digest.hexdigest()[:12]


def write_report(results: str, record: dict, out: Path | None, echo) -> dict:
    """The study report into ``out`` (default: ``<results>/report`` for a local folder;
    for a URI a local ``./report``, uploaded to ``<results>/report/`` as well), skipped
    when the one there was made from the same results (its ``done.json``)."""
    from pipeline.store.location import Location

    root = Location.of(results)
    tops = [f.split("/")[0] for e in record["entries"].values() for f in e["folders"]]
    folders = list(dict.fromkeys(tops))  # in the study's order
    fp = results_fingerprint(results, folders)
    marker = root / "report" / "done.json"
    target = str(Path(out).resolve()) if out else str(root / "report")
    if marker.is_file():
        done = json.loads(marker.read_text())
        key = (fp, record["sha256"], sorted(folders), target)
        was = (done.get("fingerprint"), done.get("study_sha256"), done.get("folders"))
        if (*was, done.get("out")) == key and Location.of(done["html"]).is_file():
            echo(f"[report] up to date (results fingerprint {fp}): {done['html']}")
            return done
    writers = load_group(REPORT_GROUP, "report writer")
    if not writers:
        raise UserError(f"no report writer installed (entry point group {REPORT_GROUP})")
    if out is not None:
        local = Path(out)
    elif root.is_local:
        local = Path(root.path) / "report"
    else:  # written in a fresh folder, then uploaded beside the results
        local = Path(tempfile.mkdtemp(prefix="gnn2gnn-report-"))
    t0 = time.monotonic()
    echo(f"[report] writing the report of {len(folders)} folders into {local}")
    written = {}
    for name, write in writers.items():
        written[name] = write(results, {**record, "fingerprint": fp}, local, folders)
    html = str(next(iter(written.values())))
    if not root.is_local:  # the report beside the results, readable after a download
        for path in sorted(p for p in Path(local).rglob("*") if p.is_file()):
            (root / "report" / str(path.relative_to(local))).write_bytes(path.read_bytes())
        html = str(root / "report" / Path(html).relative_to(local))
    done = {
        "fingerprint": fp,
        "study_sha256": record["sha256"],
        "folders": sorted(folders),
        "out": target,
        "html": html,
        "seconds": round(time.monotonic() - t0, 1),
    }
    marker.write_bytes(json.dumps(done, indent=2).encode())
    echo(f"[report] done in {done['seconds']:.0f}s: {html}")
    return done


def _check_record(results, record: dict, resume: bool) -> dict:
    """``<results>/study.json``: written on the first run; a rerun needs ``--resume``, the
    same study and profile, and adds its entries to the record (``--only`` runs build up
    one study); the record as written."""
    from pipeline.store.location import Location

    path = Location.of(results) / "study.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if not resume:
            raise UserError(
                f"{results} already holds study {old.get('study')} (profile "
                f"{old.get('profile')}): pass --resume to continue it, or choose another --results"
            )
        if (old.get("study"), old.get("profile")) != (record["study"], record["profile"]):
            raise UserError(
                f"{results} holds study {old.get('study')} at profile {old.get('profile')}, "
                f"not {record['study']} at {record['profile']}: give those, or another --results"
            )
        entries = {**old.get("entries", {}), **record["entries"]}
        only = None if old.get("only") is None or record["only"] is None else record["only"]
        record = {**record, "entries": entries, "only": only and sorted(entries)}
    path.write_bytes(json.dumps(record, indent=2, default=str).encode())
    return record


def cmd_reproduce(args: argparse.Namespace) -> int:
    from pipeline.paths import workers_data_dir
    from pipeline.store.lease import DriverLease
    from pipeline.store.location import Location
    from pipeline.study import Study
    from pipeline.sweep.queue import run_queue
    from pipeline.sweep.session import versions

    study = Study(args.study)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    entries = study.select(only)
    results = args.results.rstrip("/") or args.results
    root = Location.of(results)
    record = {**study.record(args.profile, only), "versions": versions()}
    data_dir = workers_data_dir(args.data_dir)
    jobs = study.jobs(entries, results, args.profile)
    root.mkdir()
    # one driver per study folder: study.json, the queue and the report (a sweep folder's
    # own lease is taken by the queue)
    lease = DriverLease([root]).acquire()
    try:
        record = _check_record(results, record, args.resume)
        echo = _tee(Path(root.path) / "progress.log" if root.is_local else None)
        tasks = study.tasks(entries, results, args.profile, data_dir, echo)
        echo(
            f"[{study.spec.name}] {len(entries)} entries ({', '.join(e.id for e in entries)}), "
            f"{len(jobs)} sweep runs at profile {args.profile} into {root}"
        )
        summary = run_queue(
            jobs,
            name=study.spec.name,
            storage=root / "ray",
            tasks=tasks,
            address=args.address,
            resume=args.resume,
            max_concurrent=args.max_concurrent,
            data_dir=data_dir,
            tracking_uri=args.tracking_uri,
            log=echo,
            progress_json=args.json,
            versions=json.dumps(record["versions"]),
            study=True,
            forward_credentials=args.forward_credentials,
        )
        used = (
            summary.busy_cpu_seconds / (summary.wall_seconds * summary.cpus) if summary.cpus else 0
        )
        echo(
            f"[{study.spec.name}] queue done in {summary.wall_seconds:.0f}s: {summary.trainings} "
            f"trainings for {summary.trials} trial records ({summary.skipped} finished before, "
            f"{summary.shared} filled by sharing or copying), {len(summary.failed)} failed; "
            f"{summary.busy_cpu_seconds:.0f} busy CPU-seconds of "
            f"{summary.wall_seconds * summary.cpus:.0f} ({100 * used:.0f}%)"
        )
        for why in summary.blocked:
            echo(f"[{study.spec.name}] {why}: run again with --resume once it is fixed")
        report = None
        if not args.no_report:
            report = write_report(results, record, Path(args.out) if args.out else None, echo)
        print(
            json.dumps(
                {
                    "results": str(root),
                    "profile": args.profile,
                    "entries": [e.id for e in entries],
                    "trial_records": summary.trials,
                    "finished_before": summary.skipped,
                    "trainings": summary.trainings,
                    "shared_or_copied": summary.shared,
                    "failed": [f"{key}:{tid}" for key, tid in summary.failed],
                    "failed_tasks": summary.failed_tasks,
                    "queue_seconds": round(summary.wall_seconds, 1),
                    "busy_cpu_seconds": round(summary.busy_cpu_seconds, 1),
                    "cpus": summary.cpus,
                    "utilisation": round(used, 3),
                    "report": report,
                }
            )
        )
        return 1 if summary.failed or summary.failed_tasks else 0
    finally:
        lease.release()


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="every table of a study file (default: both papers) as one Ray queue, then the report",
    )
    p.add_argument("study", nargs="?", default=STUDY, help=f"study file (default {STUDY})")
    p.add_argument("--profile", choices=PROFILES, default="cpu")
    p.add_argument(
        "--only",
        default=None,
        metavar="IDS",
        help="comma-separated entry ids of the study (e.g. 1,3); the tasks they need run too",
    )
    p.add_argument(
        "--results",
        default="results/papers",
        help="results folder or URI, s3://BUCKET/PREFIX (default ./results/papers)",
    )
    p.add_argument("--address", default=None, help="Ray cluster (default: embedded local Ray)")
    add_forward_credentials(p)
    p.add_argument("--resume", action="store_true", help="continue; nothing finished is redone")
    p.add_argument("--data-dir", default=None, help="data folder or URI (as gnn2gnn sweep)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (as gnn2gnn sweep)")
    p.add_argument("--max-concurrent", type=int, default=None, help="Ray trials at once")
    p.add_argument(
        "--out",
        default=None,
        help="report folder (default RESULTS/report; for a URI ./report, uploaded too)",
    )
    p.add_argument("--no-report", action="store_true", help="run the queue only")
    p.add_argument("--json", action="store_true", help="progress lines as JSON (stderr)")
    p.set_defaults(func=cmd_reproduce)
