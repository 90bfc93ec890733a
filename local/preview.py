"""Offline preview: run the real program for a stack under Pulumi mocks and list what it creates.

    python -m local.preview dev

No Pulumi CLI, no AWS account: the program, the config validation and the components run
for real; only the cloud's answers are mocked (local/pulumi_mocks.py). A bad stack config
prints its message and exits 2, as `pulumi preview` would stop; so does an unknown
``agent-infra:*`` key, while a key of a namespace the program does not read is a warning.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from pathlib import Path

import pulumi

from local.pulumi_mocks import ROOT, run_program, stack_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stack", nargs="?", default="dev", help="stack name: reads Pulumi.<stack>.yaml (default dev)")
    parser.add_argument("--openapi", metavar="DIR", help="also write each region's REST API as OpenAPI JSON into DIR")
    args = parser.parse_args(argv)
    if not (ROOT / f"Pulumi.{args.stack}.yaml").exists():
        stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
        print(f"no stack {args.stack!r}; stacks: {', '.join(stacks)}", file=sys.stderr)
        return 2
    # Under the mocks the program's pulumi.log warnings go to the root logger: show them as the CLI would.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        run = run_program(stack_config(args.stack), args.stack)
    except pulumi.RunError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"stack {args.stack}: {len(run.resources)} resources (offline, under mocks)")

    def where(resource) -> str:
        if resource.region:
            return resource.region
        return "global" if resource.typ.startswith("aws:") else "-"

    for resource in sorted(run.resources, key=lambda r: (where(r), r.typ, r.name)):
        print(f"  {where(resource):<15} {resource.typ:<48} {resource.name}")
    counts = Counter(r.typ for r in run.resources)
    print("by type: " + ", ".join(f"{typ} x{n}" for typ, n in sorted(counts.items())))
    print("outputs:")
    print(json.dumps(run.outputs, indent=2, sort_keys=True))
    if args.openapi:
        folder = Path(args.openapi)
        folder.mkdir(parents=True, exist_ok=True)
        for api in run.of_type("aws:apigateway/restApi:RestApi"):
            path = folder / f"openapi-{args.stack}-{api.region}.json"
            path.write_text(json.dumps(json.loads(api.inputs["body"]), indent=2, sort_keys=True) + "\n")
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
