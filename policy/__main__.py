"""Entry point Pulumi runs for ``--policy-pack policy``: the pack's policies, all MANDATORY.

Pulumi runs this file with the pack's directory first on ``sys.path``; the repository root
goes in front so ``policy.rules`` is the same module the program and the tests import.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.pack import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, policies=build_policies(), enforcement_level=EnforcementLevel.MANDATORY)
