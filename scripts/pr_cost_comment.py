"""Put `make cost`'s summary into a stack's `pulumi preview` comment on a pull request.

    GITHUB_TOKEN=... GITHUB_REPOSITORY=owner/repo \\
        python -m scripts.pr_cost_comment --stack acme/agent-infra/dev --pr 12 build/cost-dev.md

``--stack`` is the fully qualified name the preview ran on (its ``stack-name``).
pulumi/actions writes one comment per stack whose body starts with
``#### :tropical_drink: `preview` on agent-infra/<org>/agent-infra/<stack>`` (the project,
then the stack name as given) and holds ``<summary>Pulumi report</summary>``, and rewrites it
whole on every run (``edit-pr-comment: true``). This script adds the summary to that comment
between two markers, replacing an earlier summary, so the preview and its cost read as one.
When the preview left no comment (it failed before writing one), the summary gets a comment
of its own, found again by its marker on the next run.

pulumi/actions (src/libs/pr.ts at v7.0.0) looks for its comment with one ``listComments``
call: the first page, GitHub's default 30 comments, oldest first. On a pull request whose
preview comment is not among its first 30 comments, every run posts a new one. So this
script reads every page, puts the summary into the preview comment updated last (the one
just written) and deletes the older preview comments of this stack, and its own comment
once a preview comment exists, when they have the same author: one comment per stack stays.
Exit status 0 when the comment holds the summary, 1 when GitHub refused, 2 on bad arguments.

GitHub's REST API for issue comments (a pull request is an issue; 30 per page unless asked,
in ascending id order): https://docs.github.com/en/rest/issues/comments
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT = "agent-infra"
# GitHub refuses a comment body over 65,536 characters ("body is too long").
MAX_BODY = 65_536
API_VERSION = "2022-11-28"


# <org>/<project>/<stack> (https://www.pulumi.com/docs/iac/concepts/stacks/#create-stack).
QUALIFIED = re.compile(rf"^[A-Za-z0-9_.-]+/{PROJECT}/[A-Za-z0-9_.-]+$")


def preview_heading(stack: str) -> str:
    """The first line pulumi/actions gives its comment (src/libs/pr.ts, ``heading``:
    ``${projectName}/${stackName}``, the stack name as the workflow gives it)."""
    return f"#### :tropical_drink: `preview` on {PROJECT}/{stack}"


PREVIEW_SUMMARY = "<summary>Pulumi report</summary>"


def markers(stack: str) -> tuple[str, str]:
    return f"<!-- {PROJECT}:cost:{stack} -->", f"<!-- /{PROJECT}:cost:{stack} -->"


def with_section(body: str, section: str, stack: str) -> str:
    """``body`` with ``section`` between this stack's markers: an earlier section replaced,
    else appended. Text outside the markers is kept as it is."""
    start, end = markers(stack)
    block = f"{start}\n{section.strip()}\n{end}"
    if start in body and end in body[body.index(start) :]:
        before = body[: body.index(start)]
        after = body[body.index(end, body.index(start)) + len(end) :]
        return before + block + after
    return body.rstrip("\n") + "\n\n" + block + "\n"


class GitHub:
    def __init__(self, token: str, repository: str, api: str = "https://api.github.com") -> None:
        if urlsplit(api).scheme not in ("https", "http"):
            raise ValueError(f"the GitHub API URL must be http(s), got {api!r}")
        self.token, self.repository, self.api = token, repository, api.rstrip("/")

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 - an http(s) URL, checked in __init__
            f"{self.api}/repos/{self.repository}{path}",
            method=method,
            data=None if payload is None else json.dumps(payload).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - see above
            return json.loads(response.read() or b"null")

    def comments(self, pr: int) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            batch = self._call("GET", f"/issues/{pr}/comments?per_page=100&page={page}")
            yield from batch
            if len(batch) < 100:
                return
            page += 1

    def update(self, comment_id: int, body: str) -> None:
        self._call("PATCH", f"/issues/comments/{comment_id}", {"body": body})

    def create(self, pr: int, body: str) -> None:
        self._call("POST", f"/issues/{pr}/comments", {"body": body})

    def delete(self, comment_id: int) -> None:
        self._call("DELETE", f"/issues/comments/{comment_id}")


def _latest(comments: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The comment updated last (ISO 8601 UTC times compare as text; the id breaks a tie)."""
    return max(comments, key=lambda c: (c["updated_at"], c["id"]), default=None)


def _author(comment: dict[str, Any]) -> str | None:
    """Its author's login (GitHub may give no user for a deleted account)."""
    return (comment.get("user") or {}).get("login")


def post(github: GitHub, pr: int, stack: str, section: str) -> str:
    """Put the section in place, delete this stack's stale comments; say where it went."""
    heading, (start, _) = preview_heading(stack), markers(stack)
    comments = list(github.comments(pr))
    # The heading is a line of its own: `.../dev` is not taken for `.../dev2`.
    previews = [c for c in comments if c["body"].startswith(heading + "\n") and PREVIEW_SUMMARY in c["body"]]
    own = [c for c in comments if c["body"].startswith(start)]
    target = _latest(previews) or _latest(own)
    body = with_section(target["body"] if target else "", section, stack).lstrip("\n")
    if len(body) > MAX_BODY:
        raise ValueError(f"the comment would be {len(body):,} characters; GitHub takes at most {MAX_BODY:,}")
    if target is None:
        github.create(pr, body)
        return "a new comment"
    github.update(target["id"], body)
    author = _author(target)
    stale = [c for c in previews + own if c["id"] != target["id"] and author is not None and _author(c) == author]
    for comment in stale:
        github.delete(comment["id"])
    where = "the preview comment" if previews else "its own comment"
    return where + (f"; {len(stale)} older deleted" if stale else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.pr_cost_comment", description=__doc__.splitlines()[0])
    parser.add_argument("summary", type=Path, help="the Markdown summary (make cost MARKDOWN=<file>)")
    parser.add_argument("--stack", required=True, help="the fully qualified stack: <org>/agent-infra/<stack>")
    parser.add_argument("--pr", type=int, required=True, help="pull request number")
    args = parser.parse_args(argv)
    if not QUALIFIED.match(args.stack):
        parser.error(
            f"--stack must be fully qualified, <org>/{PROJECT}/<stack> as the preview's stack-name, got {args.stack!r}"
        )
    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        parser.error("GITHUB_TOKEN and GITHUB_REPOSITORY must be set (GitHub Actions sets the second)")
    if not args.summary.is_file():
        short = args.stack.rsplit("/", 1)[1]
        parser.error(f"no summary at {args.summary}: run make cost STACK={short} MARKDOWN={args.summary}")
    try:
        github = GitHub(token, repository, os.environ.get("GITHUB_API_URL", "https://api.github.com"))
        where = post(github, args.pr, args.stack, args.summary.read_text())
    except (urllib.error.URLError, ValueError) as error:
        detail = error.read().decode(errors="replace")[:500] if isinstance(error, urllib.error.HTTPError) else ""
        print(f"could not put the cost summary on pull request {args.pr}: {error} {detail}".rstrip(), file=sys.stderr)
        return 1
    print(f"cost summary for {args.stack} put on pull request {args.pr} ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
