"""The local stack and the offline tools (``make dev``, ``make preview``, ``make policy``).

One import-time step for everything here that loads moto's Step Functions interpreter:
its Batch integration imports ``JobStatus`` from ``moto.batch.utils``, and importing that
module runs ``moto/batch/__init__.py``, which loads moto's Batch models and with them all of
moto's EC2 (every region's zones and instance types): 0.8 s of a 2.5 s start, for a service
the local stack never calls. ``moto.batch.utils`` is imported here on its own, without the
package's ``__init__``; nothing else changes (``import moto.batch`` later loads the real
package, which finds this module already there).
"""

from __future__ import annotations


def _import_moto_batch_utils_alone() -> None:
    import importlib.util
    import sys

    if "moto.batch" in sys.modules or "moto.batch.utils" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None:  # moto not installed: nothing to do
        return
    sys.modules["moto.batch"] = importlib.util.module_from_spec(spec)  # the package, its __init__ not run
    try:
        importlib.import_module("moto.batch.utils")
    finally:
        del sys.modules["moto.batch"]


_import_moto_batch_utils_alone()
