"""summarize_documents: a long tool (runtime ``fargate-spot``). Fetches a list of documents and
summarises each one, one at a time, with checkpoints.

Each document is one work item (``handlers.shared.longrun``): fetched under ``http_fetch``'s
rules by its own fetcher (public ``https://`` only, every address checked, no DNS rebinding,
redirects re-checked, a time budget, at most ``maxBytes``, text only), then summarised
extractively: the document's own sentences that carry its most frequent words, in their
order. A document that cannot be fetched is an item with an error, not a failed step; one
that keeps failing for passing reasons (5xx, timeouts) after :data:`FETCH_ATTEMPTS` is too.
Bounded: at most :data:`MAX_DOCUMENTS` documents, :data:`MAX_SENTENCES` sentences of at most
:data:`MAX_SENTENCE_CHARS` characters each, so an item's result is small and one item takes
at most ``FETCH_ATTEMPTS`` fetch budgets (about 30 s), below the stop's grace.

The fetcher is this module's :data:`FETCHER` (``http_fetch``'s, with its real resolver and
connections); tests and ``bench/interruptions.py`` replace its network edges, never its rules.
"""

from __future__ import annotations

import html.parser
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec

from handlers.shared.longrun import LongWork, WorkItem
from handlers.shared.tooling import ToolContext, ToolDefinition, ToolInputError, ToolTransientError
from handlers.tools import http_fetch

MAX_DOCUMENTS = 50
MAX_SENTENCES = 5
MAX_SENTENCE_CHARS = 400
FETCH_ATTEMPTS = 3
RETRY_SECONDS = 1.0
FETCHER = http_fetch.FETCHER

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "all",
        "any",
        "can",
        "had",
        "her",
        "was",
        "one",
        "our",
        "out",
        "has",
        "have",
        "this",
        "that",
        "with",
        "from",
        "they",
        "will",
        "would",
        "there",
        "their",
        "what",
        "which",
        "when",
        "were",
        "been",
        "into",
        "than",
        "then",
        "them",
        "these",
        "those",
        "its",
        "also",
        "more",
        "most",
        "such",
        "only",
        "other",
        "some",
        "very",
        "just",
        "about",
        "over",
        "after",
        "before",
        "where",
        "while",
        "each",
        "may",
        "must",
        "should",
        "could",
    ]
)


class SummarizeInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    urls: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=http_fetch.MAX_URL)]],
        msgspec.Meta(min_length=1, max_length=MAX_DOCUMENTS, description="The https:// URLs of the documents"),
    ]
    sentences: Annotated[int, msgspec.Meta(ge=1, le=MAX_SENTENCES, description="Sentences per summary")] = 3
    maxBytes: Annotated[
        int, msgspec.Meta(ge=1, le=http_fetch.MAX_BYTES_LIMIT, description="At most this many bytes of each document")
    ] = http_fetch.DEFAULT_MAX_BYTES


class _Text(html.parser.HTMLParser):
    """The visible text of an HTML page, and its title."""

    _HIDDEN = frozenset({"script", "style", "noscript", "template", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._hidden = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag in ("p", "br", "div", "li", "h1", "h2", "h3", "h4", "section", "article", "tr"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._hidden:
            self.parts.append(data)


def readable_text(body: str, content_type: str) -> tuple[str, str]:
    """The document's text and title (HTML reduced to what a reader sees; other text as is)."""
    if content_type not in ("text/html", "application/xhtml+xml"):
        return body, ""
    parser = _Text()
    parser.feed(body)
    parser.close()
    return "".join(parser.parts), " ".join(parser.title.split())[:200]


def summarize(text: str, sentences: int) -> list[str]:
    """The ``sentences`` sentences of ``text`` whose words are most frequent in it, in order."""
    candidates = [" ".join(s.split()) for block in text.split("\n") for s in _SENTENCE.split(block)]
    candidates = [s for s in candidates if len(_WORD.findall(s.lower())) >= 3]
    if not candidates:
        return []
    frequency = Counter(w for s in candidates for w in _WORD.findall(s.lower()) if w not in _STOPWORDS)

    def score(sentence: str) -> float:
        words = [w for w in _WORD.findall(sentence.lower()) if w not in _STOPWORDS]
        return sum(frequency[w] for w in words) / (len(words) ** 0.5 or 1)

    best = sorted(range(len(candidates)), key=lambda i: (-score(candidates[i]), i))[:sentences]
    return [_clip(candidates[i]) for i in sorted(best)]


def _clip(sentence: str) -> str:
    return sentence if len(sentence) <= MAX_SENTENCE_CHARS else sentence[: MAX_SENTENCE_CHARS - 1].rstrip() + "…"


def plan(ctx: ToolContext, request: SummarizeInput) -> list[WorkItem]:
    return [WorkItem(key=f"{index:04d}", data=url) for index, url in enumerate(request.urls)]


def _fetch(url: str, max_bytes: int) -> dict[str, Any]:
    """The fetch, retried on passing failures; the last one's message when they persist."""
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            return FETCHER.fetch(url, max_bytes)
        except ToolTransientError:
            if attempt == FETCH_ATTEMPTS:
                raise
            time.sleep(RETRY_SECONDS * attempt)
    raise AssertionError("unreachable")


def work(ctx: ToolContext, request: SummarizeInput, item: WorkItem) -> dict[str, Any]:
    url = item.data
    try:
        fetched = _fetch(url, request.maxBytes)
    except ToolInputError as error:
        return {"url": url, "error": str(error)}
    except ToolTransientError as error:
        return {"url": url, "error": f"unavailable after {FETCH_ATTEMPTS} attempts: {error}"}
    text, title = readable_text(fetched["body"], fetched["contentType"])
    return {
        "url": url,
        "status": fetched["status"],
        "title": title,
        "summary": summarize(text, request.sentences),
        "words": len(text.split()),
        "truncated": fetched["truncated"],
    }


def finish(
    ctx: ToolContext, request: SummarizeInput, items: Sequence[WorkItem], results: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    failed = sum(1 for result in results if "error" in result)
    return {"documents": list(results), "summarized": len(results) - failed, "failed": failed}


TOOL = ToolDefinition(
    name="summarize_documents",
    description=(
        f"Fetch up to {MAX_DOCUMENTS} public https:// documents (text, HTML, JSON or XML) and summarise each in a few "
        "of its own sentences. Runs long, as a task: one document at a time, resumed where it stopped if interrupted."
    ),
    input_type=SummarizeInput,
    run=LongWork(plan, work, finish, max_items=MAX_DOCUMENTS),
    runtime="fargate-spot",
)
handler = TOOL.lambda_handler
