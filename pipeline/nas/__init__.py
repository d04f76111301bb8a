"""The NAS domain both papers share: search spaces, cells, dense graphs, the benchmark
tables and their readers, the device row lookup and the torch-geometric view.

Nothing here names a paper; the papers' models live in ``trainables/``.
"""
