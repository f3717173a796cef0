"""One context builder: retrieve, budget and assemble the prompt for one question.

`build()` is the chat turn's step between the user's text and the model: hybrid search over
memories, documents and past answers (`Store.search`), a few similar accepted answers as
examples (`Store.similar_accepted`), then `agent.llm.prompt.assemble` within the chat's
budgets (`ChatSettings`). `agent.core.turn.Chat.send` and `hearth eval`
(`adapters.eval.context.build_prompts`) both call it, so what eval scores as "rag" is what
the chat serves.

It does not call the model (a token counter is passed in), stream or record anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.llm import prompt

if TYPE_CHECKING:
    from memory.store import Store

RETRIEVAL_QUERY_CHARS = 2_000  # a huge paste searches by its beginning


@dataclass
class ChatSettings:
    """Per-chat knobs; defaults suit a 135M model on a laptop CPU."""

    retrieval_k: int = 4
    """How many memory/document/history hits to offer the prompt."""
    examples_k: int = 1
    """How many similar accepted answers to show as examples."""
    context_tokens: int = 4096
    """Prompt + answer budget (the model allows 8k; prefill on CPU is ~90 tok/s)."""
    notes_tokens: int = 768
    """Budget for the quoted notes inside the prompt."""


def build(
    store: Store,
    question: str,
    history: Sequence[prompt.Message],
    *,
    system_prompt: str,
    settings: ChatSettings,
    count: Callable[[str], int],
    prompt_tokens: int,
    specials: Iterable[str] = prompt.DEFAULT_SPECIALS,
    exclude_conversation_id: str | None = None,
) -> prompt.Assembled:
    """The prompt for `question` after `history`, with what retrieval found, in `prompt_tokens`.

    `exclude_conversation_id` keeps the current conversation's own messages out of the hits
    (they are already in `history`).
    """
    query = question[:RETRIEVAL_QUERY_CHARS]
    hits = store.search(query, k=settings.retrieval_k,
                        exclude_conversation_id=exclude_conversation_id)
    examples = store.similar_accepted(query, k=settings.examples_k)
    return prompt.assemble(
        system_prompt, question, list(history), hits, examples,
        count=count, budget=prompt_tokens, notes_budget=settings.notes_tokens, specials=specials,
    )
