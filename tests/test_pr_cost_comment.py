"""scripts/pr_cost_comment.py against a stand-in for GitHub's issue-comments API: the cost
summary joins the stack's preview comment, replaces its earlier self, survives the preview
rewriting the comment, and has a comment of its own when there is no preview. On a busy pull
request, where pulumi/actions posts a new preview comment each run, the summary goes into the
newest and the older ones of the same author are deleted."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from scripts.pr_cost_comment import MAX_BODY, GitHub, main, markers, post, preview_heading, with_section

PR = 7
REPO = "acme/agent-infra"
DEV, PROD = "acme/agent-infra/dev", "acme/agent-infra/prod"  # as the workflow names them to Pulumi
BOT = "github-actions[bot]"


def preview_body(stack: str, text: str = "+ 3 to create") -> str:
    """What pulumi/actions writes (src/libs/pr.ts): heading, then the report in <details>."""
    return f"{preview_heading(stack)}\n\n<details>\n<summary>Pulumi report</summary>\n<pre>\n{text}\n</pre>\n</details>"


class FakeGitHub:
    """GET/POST /repos/{repo}/issues/{n}/comments (paged, ascending id), PATCH and DELETE
    /repos/{repo}/issues/comments/{id}. A comment is a body (by the workflow's bot) or
    (author, body); every write moves the clock on, as updated_at does."""

    def __init__(self, comments: list[str | tuple[str, str]], refuse: int | None = None) -> None:
        self.clock = 0
        self.comments: list[dict] = []
        for comment in comments:
            author, body = comment if isinstance(comment, tuple) else (BOT, comment)
            self.add(author, body)
        self.refuse = refuse
        self.calls: list[tuple[str, str]] = []
        self.auth: set[str] = set()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                fake.calls.append((self.command, self.path))
                fake.auth.add(self.headers.get("Authorization", ""))
                if fake.refuse:
                    return self._answer(fake.refuse, {"message": "Resource not accessible by integration"})
                parts = urlsplit(self.path)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if parts.path == f"/repos/{REPO}/issues/{PR}/comments" and self.command == "GET":
                    query = parse_qs(parts.query)
                    size, page = int(query["per_page"][0]), int(query["page"][0])
                    return self._answer(200, fake.comments[(page - 1) * size : page * size])
                if parts.path == f"/repos/{REPO}/issues/{PR}/comments" and self.command == "POST":
                    return self._answer(201, fake.add(BOT, body["body"]))
                if parts.path.startswith(f"/repos/{REPO}/issues/comments/"):
                    comment = next(c for c in fake.comments if c["id"] == int(parts.path.rsplit("/", 1)[1]))
                    if self.command == "PATCH":
                        comment |= {"body": body["body"], "updated_at": fake.tick()}
                        return self._answer(200, comment)
                    if self.command == "DELETE":
                        fake.comments.remove(comment)
                        self.send_response(204)
                        self.end_headers()
                        return None
                return self._answer(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tick(self) -> str:
        self.clock += 1
        return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.clock)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def add(self, author: str, body: str) -> dict:
        """A new comment: the next id (deleted ones' ids are not reused)."""
        comment = {"id": 100 + self.clock, "body": body, "user": {"login": author}, "updated_at": self.tick()}
        self.comments.append(comment)
        return comment

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self) -> list[str]:
        return [c["body"] for c in self.comments]


@pytest.fixture
def github():
    fakes: list[FakeGitHub] = []

    def make(comments: list[str], refuse: int | None = None) -> FakeGitHub:
        fakes.append(FakeGitHub(comments, refuse))
        return fakes[-1]

    yield make
    for fake in fakes:
        fake.server.shutdown()
        fake.server.server_close()


SUMMARY = (
    "#### make cost: dev (2 regions)\n\n| $ per 1M turns | direct |\n|---|---:|\n| **infrastructure** | **20.69** |\n"
)


def test_the_summary_joins_the_stacks_preview_comment_and_nothing_else(github):
    fake = github(["looks good to me", preview_body(PROD), preview_body(DEV)])
    where = post(GitHub("t0ken", REPO, fake.url), PR, DEV, SUMMARY)
    assert where == "the preview comment"
    human, prod, dev = fake.bodies()
    assert human == "looks good to me" and prod == preview_body(PROD), "other comments untouched"
    assert dev.startswith(preview_body(DEV)) and SUMMARY.strip() in dev
    assert fake.auth == {"Bearer t0ken"}


def test_a_second_run_replaces_the_summary_and_survives_the_preview_rewriting_the_comment(github):
    fake = github([preview_body(DEV)])
    client = GitHub("t", REPO, fake.url)
    post(client, PR, DEV, SUMMARY)
    post(client, PR, DEV, SUMMARY.replace("20.69", "14.16"))
    (body,) = fake.bodies()
    assert body.count(markers(DEV)[0]) == 1 and "14.16" in body and "20.69" not in body
    # The next push: pulumi/actions rewrites its comment whole, then this step runs again.
    fake.comments[0]["body"] = preview_body(DEV, "~ 1 to update")
    post(client, PR, DEV, SUMMARY)
    (body,) = fake.bodies()
    assert "~ 1 to update" in body and body.count(markers(DEV)[0]) == 1 and "20.69" in body


def test_without_a_preview_comment_the_summary_gets_its_own_found_again_next_time(github):
    fake = github(["a human comment"])
    client = GitHub("t", REPO, fake.url)
    assert post(client, PR, DEV, SUMMARY) == "a new comment"
    assert post(client, PR, DEV, SUMMARY.replace("20.69", "1.00")) == "its own comment"
    human, own = fake.bodies()
    assert human == "a human comment" and own.startswith(markers(DEV)[0]) and "1.00" in own


def test_comments_past_the_first_page_are_found(github):
    fake = github([f"comment {i}" for i in range(150)] + [preview_body(DEV)])
    assert post(GitHub("t", REPO, fake.url), PR, DEV, SUMMARY) == "the preview comment"
    assert SUMMARY.strip() in fake.bodies()[-1] and len(fake.bodies()) == 151
    assert [path for method, path in fake.calls if method == "GET"] == [
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100&page={n}" for n in (1, 2)
    ]


def test_on_a_busy_pull_request_the_newest_preview_comment_gets_the_summary_and_the_older_go(github):
    """pulumi/actions reads only the first 30 comments: its comment at position 41 is not
    found, so this run's preview is a new comment. One comment for the stack remains."""
    humans = [("reviewer", f"comment {i}") for i in range(40)]
    fake = github([*humans, preview_body(DEV, "old run"), preview_body(PROD), preview_body(DEV, "this run")])
    where = post(GitHub("t", REPO, fake.url), PR, DEV, SUMMARY)
    assert where == "the preview comment; 1 older deleted"
    bodies = fake.bodies()
    assert bodies[:40] == [body for _, body in humans] and bodies[40] == preview_body(PROD)
    (dev,) = bodies[41:]
    assert dev.startswith(preview_body(DEV, "this run")) and SUMMARY.strip() in dev
    assert [method for method, _ in fake.calls].count("DELETE") == 1


def test_the_preview_comment_updated_last_is_the_one_just_written(github):
    """When pulumi/actions finds and edits its older comment, that one is the newest by
    updated_at though not by id."""
    fake = github([preview_body(DEV, "edited"), preview_body(DEV, "stale duplicate")])
    fake.comments[0]["updated_at"] = fake.tick()  # pulumi/actions edited the first
    assert post(GitHub("t", REPO, fake.url), PR, DEV, SUMMARY) == "the preview comment; 1 older deleted"
    (body,) = fake.bodies()
    assert body.startswith(preview_body(DEV, "edited")) and SUMMARY.strip() in body


def test_only_comments_of_the_same_author_are_deleted(github):
    quoted = ("reviewer", preview_body(DEV, "a human quoting an old preview"))
    fake = github([quoted, preview_body(DEV, "this run")])
    assert post(GitHub("t", REPO, fake.url), PR, DEV, SUMMARY) == "the preview comment"
    assert fake.bodies()[0] == quoted[1] and len(fake.bodies()) == 2


def test_its_own_comment_goes_once_a_preview_comment_exists(github):
    fake = github(["a human comment"])
    client = GitHub("t", REPO, fake.url)
    assert post(client, PR, DEV, SUMMARY) == "a new comment"  # the preview failed before commenting
    fake.add(BOT, preview_body(DEV))  # the next run's preview commented
    assert post(client, PR, DEV, SUMMARY) == "the preview comment; 1 older deleted"
    human, preview = fake.bodies()
    assert human == "a human comment" and preview.startswith(preview_body(DEV)) and SUMMARY.strip() in preview


def test_a_stack_whose_name_extends_another_is_not_taken_for_it(github):
    fake = github([preview_body(DEV + "2"), preview_body(DEV)])
    assert post(GitHub("t", REPO, fake.url), PR, DEV, SUMMARY) == "the preview comment"
    other, dev = fake.bodies()
    assert other == preview_body(DEV + "2") and SUMMARY.strip() in dev


def test_the_heading_is_pulumi_actions_own_for_a_fully_qualified_stack():
    """pulumi/actions src/libs/pr.ts at v7.0.0: the heading is the command, then
    ``${projectName}/${stackName}`` with the stack name exactly as the workflow gives it."""
    assert preview_heading(DEV) == "#### :tropical_drink: `preview` on agent-infra/acme/agent-infra/dev"


def test_text_around_the_markers_is_kept():
    start, end = markers(DEV)
    body = f"head\n{start}\nold\n{end}\ntail {start} without an end"
    replaced = with_section(body, "new", DEV)
    assert replaced.startswith(f"head\n{start}\nnew\n{end}\ntail") and "old" not in replaced


def test_a_refusal_is_exit_1_with_githubs_words(github, tmp_path, monkeypatch, capsys):
    fake = github([preview_body(DEV)], refuse=403)
    summary = tmp_path / "cost.md"
    summary.write_text(SUMMARY)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    assert main([str(summary), "--stack", DEV, "--pr", str(PR)]) == 1
    assert "Resource not accessible by integration" in capsys.readouterr().err


def test_a_summary_too_long_for_github_is_refused_before_writing(github):
    fake = github([preview_body(DEV)])
    with pytest.raises(ValueError, match="65,536"):
        post(GitHub("t", REPO, fake.url), PR, DEV, "x" * MAX_BODY)
    assert [method for method, _ in fake.calls] == ["GET"]


def test_a_stack_that_is_not_fully_qualified_is_exit_2_naming_the_form(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "cost.md"
    summary.write_text(SUMMARY)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    for stack in ("dev", "acme/dev", "acme/other-project/dev"):
        with pytest.raises(SystemExit) as stopped:
            main([str(summary), "--stack", stack, "--pr", "1"])
        assert stopped.value.code == 2
        assert f"<org>/agent-infra/<stack> as the preview's stack-name, got {stack!r}" in capsys.readouterr().err


def test_bad_arguments_are_exit_2(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "missing.md"), "--stack", DEV, "--pr", "1"])
    assert stopped.value.code == 2
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "missing.md"), "--stack", DEV, "--pr", "1"])
    assert stopped.value.code == 2
