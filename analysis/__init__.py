"""Every table, figure and report, from the results' Parquet files: the shared pieces
(:mod:`analysis.stats`, the one 95% interval; :mod:`analysis.render`, the one renderer:
Markdown, CSV, LaTeX; :mod:`analysis.figures`), each paper's analysis
(:mod:`analysis.gnn2gnn`, :mod:`analysis.infonas`), the report over all of them
(:mod:`analysis.report`) and the commands (:mod:`analysis.cli`: ``python -m analysis``).
Nothing here imports a paper's trial code; Ray workers never import it."""
