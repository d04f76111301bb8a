"""Sweeps: the sweep file's schema and defaults (:mod:`.spec`), the Ray Tune run and its
recording callback (:mod:`.run`), and the trial entry in a Ray worker (:mod:`.worker`)."""
