"""What a built definition is checked for: the Lambda functions it invokes (its role may
invoke those only) and states no path reaches."""

from __future__ import annotations

from collections.abc import Mapping


def lambda_arns(definition: Mapping) -> set[str]:
    """Every Lambda function a definition invokes (for the state machine's role)."""
    found: set[str] = set()

    def visit(states: Mapping) -> None:
        for state in states.values():
            resource = state.get("Resource", "")
            if resource.startswith("arn:") and ":lambda:" in resource and ":function:" in resource:
                found.add(resource)
            function_name = state.get("Parameters", {}).get("FunctionName")
            if function_name:
                found.add(function_name)
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                visit(processor["States"])

    visit(definition["States"])
    return found


def reachability_problems(definition: Mapping) -> list[str]:
    """States nobody reaches and transitions to states that do not exist, at every level."""
    problems: list[str] = []

    def targets(state: Mapping) -> list[str]:
        out = [state["Next"]] if "Next" in state else []
        out += [c["Next"] for c in state.get("Choices", [])]
        out += [c["Next"] for c in state.get("Catch", [])]
        if "Default" in state:
            out.append(state["Default"])
        return out

    def check(machine: Mapping, where: str) -> None:
        states = machine["States"]
        if machine["StartAt"] not in states:
            problems.append(f"{where}: StartAt {machine['StartAt']!r} does not exist")
        seen, todo = set(), [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name in seen or name not in states:
                continue
            seen.add(name)
            for target in targets(states[name]):
                if target not in states:
                    problems.append(f"{where}: {name!r} goes to missing state {target!r}")
                todo.append(target)
        for name in states:
            if name not in seen:
                problems.append(f"{where}: {name!r} is never reached")
            processor = states[name].get("ItemProcessor") or states[name].get("Iterator")
            if processor:
                check(processor, f"{where}/{name}")
            state = states[name]
            if state["Type"] not in ("Choice", "Succeed", "Fail") and not state.get("End") and "Next" not in state:
                problems.append(f"{where}: {name!r} neither ends nor has a Next")

    check(definition, "root")
    return problems
