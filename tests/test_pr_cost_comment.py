"""scripts/pr_cost_comment.py against a stand-in for GitHub's issue-comments API: the cost
summary joins the stack's preview comment, replaces its earlier self, survives the preview
rewriting the comment, and has a comment of its own when there is no preview."""

from __future__ import annotations

import http.server
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from scripts.pr_cost_comment import MAX_BODY, GitHub, main, markers, post, preview_heading, with_section

PR = 7
REPO = "acme/agent-infra"


def preview_body(stack: str, text: str = "+ 3 to create") -> str:
    """What pulumi/actions writes (src/libs/pr.ts): heading, then the report in <details>."""
    return f"{preview_heading(stack)}\n\n<details>\n<summary>Pulumi report</summary>\n<pre>\n{text}\n</pre>\n</details>"


class FakeGitHub:
    """GET/POST /repos/{repo}/issues/{n}/comments (paged), PATCH /repos/{repo}/issues/comments/{id}."""

    def __init__(self, comments: list[str], refuse: int | None = None) -> None:
        self.comments = [{"id": 100 + i, "body": body} for i, body in enumerate(comments)]
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
                    fake.comments.append({"id": 100 + len(fake.comments), "body": body["body"]})
                    return self._answer(201, fake.comments[-1])
                if parts.path.startswith(f"/repos/{REPO}/issues/comments/") and self.command == "PATCH":
                    comment = next(c for c in fake.comments if c["id"] == int(parts.path.rsplit("/", 1)[1]))
                    comment["body"] = body["body"]
                    return self._answer(200, comment)
                return self._answer(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

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
    fake = github(["looks good to me", preview_body("prod"), preview_body("dev")])
    where = post(GitHub("t0ken", REPO, fake.url), PR, "dev", SUMMARY)
    assert where == "the preview comment"
    human, prod, dev = fake.bodies()
    assert human == "looks good to me" and prod == preview_body("prod"), "other comments untouched"
    assert dev.startswith(preview_body("dev")) and SUMMARY.strip() in dev
    assert fake.auth == {"Bearer t0ken"}


def test_a_second_run_replaces_the_summary_and_survives_the_preview_rewriting_the_comment(github):
    fake = github([preview_body("dev")])
    client = GitHub("t", REPO, fake.url)
    post(client, PR, "dev", SUMMARY)
    post(client, PR, "dev", SUMMARY.replace("20.69", "14.16"))
    (body,) = fake.bodies()
    assert body.count(markers("dev")[0]) == 1 and "14.16" in body and "20.69" not in body
    # The next push: pulumi/actions rewrites its comment whole, then this step runs again.
    fake.comments[0]["body"] = preview_body("dev", "~ 1 to update")
    post(client, PR, "dev", SUMMARY)
    (body,) = fake.bodies()
    assert "~ 1 to update" in body and body.count(markers("dev")[0]) == 1 and "20.69" in body


def test_without_a_preview_comment_the_summary_gets_its_own_found_again_next_time(github):
    fake = github(["a human comment"])
    client = GitHub("t", REPO, fake.url)
    assert post(client, PR, "dev", SUMMARY) == "a new comment"
    assert post(client, PR, "dev", SUMMARY.replace("20.69", "1.00")) == "its own comment"
    human, own = fake.bodies()
    assert human == "a human comment" and own.startswith(markers("dev")[0]) and "1.00" in own


def test_comments_past_the_first_page_are_found(github):
    fake = github([f"comment {i}" for i in range(150)] + [preview_body("dev")])
    assert post(GitHub("t", REPO, fake.url), PR, "dev", SUMMARY) == "the preview comment"
    assert SUMMARY.strip() in fake.bodies()[-1] and len(fake.bodies()) == 151
    assert [path for method, path in fake.calls if method == "GET"] == [
        f"/repos/{REPO}/issues/{PR}/comments?per_page=100&page={n}" for n in (1, 2)
    ]


def test_text_around_the_markers_is_kept():
    start, end = markers("dev")
    body = f"head\n{start}\nold\n{end}\ntail {start} without an end"
    replaced = with_section(body, "new", "dev")
    assert replaced.startswith(f"head\n{start}\nnew\n{end}\ntail") and "old" not in replaced


def test_a_refusal_is_exit_1_with_githubs_words(github, tmp_path, monkeypatch, capsys):
    fake = github([preview_body("dev")], refuse=403)
    summary = tmp_path / "cost.md"
    summary.write_text(SUMMARY)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    assert main([str(summary), "--stack", "dev", "--pr", str(PR)]) == 1
    assert "Resource not accessible by integration" in capsys.readouterr().err


def test_a_summary_too_long_for_github_is_refused_before_writing(github):
    fake = github([preview_body("dev")])
    with pytest.raises(ValueError, match="65,536"):
        post(GitHub("t", REPO, fake.url), PR, "dev", "x" * MAX_BODY)
    assert [method for method, _ in fake.calls] == ["GET"]


def test_bad_arguments_are_exit_2(tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "missing.md"), "--stack", "dev", "--pr", "1"])
    assert stopped.value.code == 2
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    with pytest.raises(SystemExit) as stopped:
        main([str(tmp_path / "missing.md"), "--stack", "dev", "--pr", "1"])
    assert stopped.value.code == 2
