"""Shared analysis pieces for every experiment: statistics (:mod:`analysis.stats`, the one
95% interval), rendering of tables (:mod:`analysis.render`: Markdown, CSV, LaTeX) and
figure saving (:mod:`analysis.figures`). Each experiment's own tables and figures live in
its package under ``trainables/``."""
