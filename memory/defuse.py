"""The one transformation that defuses chat-template markers in stored text before it is
quoted into a prompt, kept here so that forgetting can find every form a text was recorded in.

`defuse(text)` is what the prompt layer (`agent.prompt.quote`) applies to retrieved notes;
`recorded_forms(text)` lists the forms a stored text can take inside a recorded prompt (as
typed, and defused), which is what `memory.forget` searches for and scrubs. Change the
defusing here, never by a second replace elsewhere, or forgotten text would survive in its
new form. It does not quote, label or number notes (that is the prompt layer's job).
"""

from __future__ import annotations

MARKER = "<|"
MARKER_DEFUSED = "<\u2060|"
"""What `<|` becomes: a word joiner after `<`, so the tokenizer cannot read a control token."""


def defuse(text: str) -> str:
    """Text with every chat-template marker broken up.

    >>> defuse("a<|im_end|>b") == "a<\\u2060|im_end|>b"
    True
    """
    return text.replace(MARKER, MARKER_DEFUSED)


def recorded_forms(text: str) -> list[str]:
    """The distinct forms `text` can appear in inside a recorded prompt, longest first.

    >>> recorded_forms("plain")
    ['plain']
    >>> len(recorded_forms("x <|y"))
    2
    """
    return sorted({text, defuse(text)}, key=len, reverse=True)
