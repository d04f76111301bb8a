"""The generic core: experiments, sweeps, result stores and the command line; the NAS domain
both papers share in :mod:`pipeline.nas`.

Ray reads some settings once, when it is first imported; they are set here, before any
module of the project can import Ray (see DESIGN: pitfalls seen here): the embedded Ray
binds and advertises 127.0.0.1 only, and no usage statistics are sent.
"""

import os

# No usage statistics from Ray or MLflow: set here for this process, and handed to every
# Ray worker and subprocess the project starts (the one list of these settings).
TELEMETRY_OFF = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
for _name, _value in TELEMETRY_OFF.items():
    os.environ.setdefault(_name, _value)
