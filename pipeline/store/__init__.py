"""Where results live: a folder or object-storage prefix (:mod:`.location`), whole-or-nothing
writes (:mod:`.io`), the Parquet results dataset (:mod:`.results`) and MLflow
(:mod:`.tracking`)."""
