"""memory_search: a continuation tool (runtime ``continuation``). Searches every memory the user
has, across topics, for words, a slice of pages at a time.

``memory`` recalls one topic's newest memories in one Query; a search of everything a user
ever remembered reads the whole ``USER#<userId>`` / ``MEM#`` range, page by page, which for a
long-lived user outgrows one invocation. Each slice reads at most :data:`PAGES_PER_SLICE`
pages of :data:`PAGE_SIZE` memories, keeps what matches (every word of the query, case
folded), and hands the position on (:class:`~handlers.shared.tooling.Continue`); the task
machine invokes it again until it is done. It only reads, so a slice redone changes
nothing; the slice's outcome is still written once, so a redelivered slice hands back the
same token even when memories were added in between.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from handlers.shared import table as keys
from handlers.shared.store.base import from_item, to_item
from handlers.shared.tooling import Continue, ToolContext, ToolDefinition, ToolInputError

PAGE_SIZE = 100
PAGES_PER_SLICE = 10
MAX_MATCHES = 20
PREVIEW_CHARS = 300
_WORD = re.compile(r"\w+")


class MemorySearchInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="Words every match must contain")]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_MATCHES, description="At most this many matches")] = 10


class SearchState(msgspec.Struct):
    cursor: dict[str, Any] | None = None
    """The Query's LastEvaluatedKey (DynamoDB JSON), where the next slice reads from."""
    scanned: int = 0
    matches: list[dict[str, str]] = []


def _words(text: str) -> set[str]:
    return {w.casefold() for w in _WORD.findall(text)}


def _page(ctx: ToolContext, cursor: dict[str, Any] | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    request: dict[str, Any] = {
        "TableName": ctx.store.table.name,
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": keys.PARTITION_KEY, "#sk": keys.SORT_KEY},
        "ExpressionAttributeValues": to_item({":pk": keys.user_pk(ctx.user_id), ":prefix": keys.MEMORY_PREFIX}),
        "Limit": PAGE_SIZE,
    }
    if cursor is not None:
        request["ExclusiveStartKey"] = cursor
    response = ctx.store.table.client.query(**request)
    return [from_item(raw) for raw in response.get("Items", [])], response.get("LastEvaluatedKey")


def run(ctx: ToolContext, request: MemorySearchInput, state: Any) -> Continue | dict[str, Any]:
    wanted = _words(request.query)
    if not wanted:
        raise ToolInputError("the query has no words to search for")
    search = msgspec.convert(state, SearchState) if state is not None else SearchState()
    cursor = search.cursor
    for _ in range(PAGES_PER_SLICE):
        memories, cursor = _page(ctx, cursor)
        search.scanned += len(memories)
        for memory in memories:
            if len(search.matches) < request.limit and wanted <= _words(memory["text"]):
                search.matches.append(
                    {
                        "topic": memory["topic"],
                        "memoryId": memory[keys.SORT_KEY].rsplit("#", 1)[1],
                        "text": memory["text"][:PREVIEW_CHARS],
                    }
                )
        if cursor is None or len(search.matches) >= request.limit:
            return {"query": request.query, "matches": search.matches, "scanned": search.scanned}
    search.cursor = cursor
    return Continue(msgspec.to_builtins(search))


TOOL = ToolDefinition(
    name="memory_search",
    description=(
        "Search everything remembered about the user, across all topics, for memories containing every word of the "
        "query. Runs long, as a task, for users with many memories."
    ),
    input_type=MemorySearchInput,
    run=run,
    dynamodb_actions=("dynamodb:Query",),
    runtime="continuation",
)
handler = TOOL.lambda_handler
