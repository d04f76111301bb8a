"""The report of a whole study (``gnn2gnn reproduce``): each results folder's report (every
paper's tables, figures and sections, :mod:`analysis.report`), then one ``report.md`` and
one self-contained ``report.html`` for a person to read: contents, headline findings, every
table inline with its published values and reference rows, the figures embedded, the
study's settings, labels, package versions and the results fingerprint. The HTML needs no
server and no other file: open it from the results folder or after a download."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from analysis.report import papers
from analysis.report import write_report as write_folder_report
from pipeline.store.io import write_text
from pipeline.store.location import Location
from pipeline.store.results import read_trials, sweep_folders

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
code { background: #f4f4f4; padding: 0 0.2em; }
.toc { background: #f8f8f8; padding: 0.5em 1.5em; border: 1px solid #e4e4e4; }
h1, h2 { border-bottom: 1px solid #ddd; }
"""


def _labels(results: Location, folder: str) -> list[str]:
    found: set[str] = set()
    for sweep in sweep_folders(results / folder):
        trials = read_trials(sweep)
        if "label" in trials:
            found |= {str(v) for v in trials["label"].dropna().unique()}
    return sorted(found)


def headline_lines(results: Location, folders: list[str]) -> list[str]:
    """Each paper's headline findings (``headlines(results)`` of its analysis module), per
    results folder."""
    lines = []
    for name in folders:
        where = results / name
        if not sweep_folders(where):
            continue
        for paper in papers().values():
            found = getattr(paper, "headlines", None)
            for line in (found(where) if found else None) or []:
                lines.append(f"- **{name}**: {line}")
    return lines or ["- (no table with a headline in these results)"]


def _settings_table(record: dict) -> list[str]:
    rows = ["| entry | what | folders | settings |", "|---|---|---|---|"]
    for eid, e in record["entries"].items():
        what = e.get("sweep") or f"task {e.get('task')}"
        s = ", ".join(f"{k}={v}" for k, v in (e.get("settings") or {}).items()) or "(the file's)"
        rows.append(
            f"| {eid} | {e.get('title') or what} (`{what}`) | {', '.join(e['folders'])} | {s} |"
        )
    return rows


def _demote(text: str, by: int) -> str:
    return re.sub(r"^(#+) ", lambda m: "#" * min(len(m.group(1)) + by, 6) + " ", text, flags=re.M)


def _part_body(text: str, prefix: str) -> str:
    """A folder's report.md without its title, headings one level down, links into its
    subfolder."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    body = _demote("\n".join(lines), 1)
    return re.sub(r"(!?\[[^\]]*\])\((?![a-z]+:|/|#)([^)]+)\)", rf"\1({prefix}/\2)", body)


def study_markdown(results: Location, record: dict, parts: dict[str, Path]) -> str:
    versions = record.get("versions") or {}
    head = [
        f"# Reproduction: {record.get('study')} at profile `{record.get('profile')}`",
        "",
        f"Study file `{record.get('file')}` (sha256 {record.get('sha256')}); results "
        f"`{results}`; results fingerprint {record.get('fingerprint')}; entries "
        f"{', '.join(record['entries'])}.",
        "",
        "[TOC]",
        "",
        "## Headline findings",
        "",
        *headline_lines(results, list(parts)),
        "",
        "## Settings",
        "",
        "Seeds, pack sizes, the trials' profile and fields set for every trial, per entry "
        "(from the study file at this profile):",
        "",
        *_settings_table(record),
        "",
        "Labels the trials used: "
        + "; ".join(f"{name}: {', '.join(_labels(results, name)) or '-'}" for name in parts)
        + ".",
        "",
    ]
    body = []
    for name, report in parts.items():
        body += [f"## Results: {name}", "", _part_body(report.read_text(), name), ""]
    tail = [
        "## Package versions",
        "",
        "| package | version |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in versions.items()],
        "",
    ]
    return "\n".join(head + body + tail)


def _inline(markdown_text: str, out: Path) -> str:
    """The Markdown with every linked table file inline and every image as a data URI."""
    lines = []
    for line in markdown_text.splitlines():
        m = re.fullmatch(r"- \[[^\]]*\]\(([^)]+\.md)\)", line.strip())
        if m and (out / m.group(1)).is_file():
            lines += ["", _demote((out / m.group(1)).read_text(), 1), ""]
            continue
        lines.append(line)
    text = "\n".join(lines)

    def image(m: re.Match) -> str:
        path = out / m.group(2)
        if not path.is_file():
            return m.group(0)
        data = base64.b64encode(path.read_bytes()).decode()
        return f"![{m.group(1)}](data:image/png;base64,{data})"

    return re.sub(r"!\[([^\]]*)\]\(([^)]+\.png)\)", image, text)


def study_html(markdown_text: str, out: Path, title: str) -> str:
    import markdown

    body = markdown.markdown(
        _inline(markdown_text, out),
        extensions=["tables", "toc"],
        extension_configs={"toc": {"toc_depth": "2-4"}},
    )
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_study_report(results, record: dict, out: Path, folders: list[str]) -> Path:
    """Each folder's report into ``out/<folder>/``, then ``out/report.md`` and
    ``out/report.html``; the HTML's path."""
    root, out = Location.of(results), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Path] = {}
    for name in folders:
        if sweep_folders(root / name):
            parts[name] = write_folder_report(root / name, out / name)
    text = study_markdown(root, record, parts)
    write_text(text.replace("[TOC]\n\n", ""), out / "report.md")
    page = out / "report.html"
    write_text(study_html(text, out, f"Reproduction: {record.get('study')}"), page)
    return page


def table_titles(page: Path) -> list[str]:
    """The table headings of a written study page (what a reader must find in it)."""
    text = page.read_text()
    return [
        html.unescape(t) for t in re.findall(r"<h[2-6][^>]*>(Table [^<]+|Info-NAS [^<]+)</h", text)
    ]


__all__ = ["study_html", "study_markdown", "table_titles", "write_study_report"]
