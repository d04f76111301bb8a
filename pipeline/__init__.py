"""The library: cells and hashing, benchmark readers, models, sweep runner, result stores.

Ray reads some settings once, when it is first imported; they are set here, before any
module of the project can import Ray (see DESIGN: pitfalls seen here): the embedded Ray
binds and advertises 127.0.0.1 only, and no usage statistics are sent.
"""

import os

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
