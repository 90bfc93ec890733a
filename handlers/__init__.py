"""Lambda code for agent-infra, packaged as one importable package.

The same imports work in Lambda (the package sits at the archive root) and in the tests.

Cold start: building boto3 clients allocates ~10^5 long-lived objects (botocore's service
models), and the cyclic garbage collector would walk them again and again while the
handler's modules import (a full pass costs ~30 ms here). In Lambda, collection is paused
from the first import of this package until the function's init is done
(:func:`init_done`), and everything init built is then frozen out of later collections,
which also keeps GC pauses out of requests.
"""

import gc
import os

_IN_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
if _IN_LAMBDA:
    gc.disable()


def init_done() -> None:
    """Call once a handler's module-level init (settings, clients, stores) is complete."""
    if _IN_LAMBDA and not gc.isenabled():
        gc.freeze()
        gc.enable()
