"""Tables as files: Markdown, CSV and LaTeX from a pandas frame of display strings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipeline.store.io import atomic_path

FORMATS = ("md", "csv", "tex")  # every table is written in these


def tex_escape(text: str) -> str:
    return (
        text.replace("\\", r"\textbackslash{}")
        .replace("_", r"\_")
        .replace("%", r"\%")
        .replace("&", r"\&")
        .replace("#", r"\#")
        .replace("±", r"$\pm$")
        .replace("—", "--")
        .replace("`", "")
    )


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Display columns only (``<x>_mean`` columns are for CSV readers)."""
    return frame[[c for c in frame.columns if not str(c).endswith("_mean")]]


def markdown(frame: pd.DataFrame, caption: str, title: str) -> str:
    shown = _shown(frame)
    head = "| " + " | ".join(map(str, shown.columns)) + " |"
    sep = "|" + "---|" * len(shown.columns)
    body = [
        "| " + " | ".join("" if v is None else str(v) for v in r) + " |"
        for r in shown.itertuples(index=False)
    ]
    return "\n".join([f"### {title}", "", caption, "", head, sep, *body, ""])


def latex(frame: pd.DataFrame, caption: str) -> str:
    shown = _shown(frame)

    def esc(v) -> str:
        return tex_escape("" if v is None else str(v))

    lines = [
        "% " + caption.replace("\n", " "),
        r"\begin{tabular}{" + "l" * len(shown.columns) + "}",
        r"\hline",
        " & ".join(esc(c) for c in shown.columns) + r" \\",
        r"\hline",
    ]
    lines += [" & ".join(esc(v) for v in r) + r" \\" for r in shown.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_formats(
    stem: Path, formats: tuple[str, ...], writers: dict[str, Callable[[Path], None]]
) -> list[Path]:
    """``stem.<fmt>`` for each of ``formats`` that ``writers`` has (fmt -> a function that
    writes the file at the path it is given), each written atomically; the files written."""
    written = []
    for fmt, write in writers.items():
        if fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            with atomic_path(path) as tmp:
                write(tmp)
            written.append(path)
    return written


def write_frame(
    frame: pd.DataFrame, stem: Path, formats: tuple[str, ...], caption: str, title: str
) -> list[Path]:
    """``stem.md``, ``stem.csv`` and ``stem.tex`` as ``formats`` asks; the files written."""
    return write_formats(
        stem,
        formats,
        {
            "md": lambda p: p.write_text(markdown(frame, caption, title)),
            "csv": lambda p: frame.to_csv(p, index=False),
            "tex": lambda p: p.write_text(latex(frame, caption)),
        },
    )
