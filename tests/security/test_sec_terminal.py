"""Issue 11 §7: no stored text sends control sequences to the terminal.

`agent.foundation.textsafe.terminal_safe` is the one sanitiser; the CLI routes stdout and stderr through
it, so `memory list` / `memory search` (and every other command) print defused text.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.foundation.textsafe import SafeStream, terminal_safe

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"  # write "rm -rf ~" to the clipboard
TITLE = "\x1b]0;pwned\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
C1 = "\x9b31m\x9d0;t\x9c\x85"
BIDI = "\u202e"


def no_controls(text: str) -> bool:
    return not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or c == BIDI
                   for c in text)


@pytest.mark.parametrize("sequence", [OSC52, TITLE, CLEAR, C1, BIDI, "\x07\x08\x00"])
def test_terminal_safe_defuses(sequence: str) -> None:
    out = terminal_safe(f"before {sequence}after")
    assert no_controls(out) and out.startswith("before ") and out.endswith("after")


def test_terminal_safe_keeps_text_and_lines() -> None:
    assert terminal_safe("Ünïcödé 🙂 مرحبا\n\tok") == "Ünïcödé 🙂 مرحبا\n\tok"
    assert terminal_safe("a\nb\rc", newlines=False) == "a b c"
    assert terminal_safe("lone \udce9 surrogate") == "lone \ufffd surrogate"


def test_a_sequence_split_across_writes_is_still_harmless() -> None:
    buf = io.StringIO()
    stream = SafeStream(buf)
    for piece in ("x\x1b", "]52;c;AAAA", "\x07y"):  # a model streaming token by token
        stream.write(piece)
    assert no_controls(buf.getvalue()) and "\x1b" not in buf.getvalue()


def test_memory_list_and_search_print_no_escapes(tmp_path: Path,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    evil = f"Ada lives in Porto {OSC52}{TITLE}{CLEAR}{C1} really"
    assert main(["memory", "add", evil]) == 0
    doc = tmp_path / f"notes{CLEAR}.md"
    doc.write_text(f"Porto harbour notes {OSC52} end\n")
    main(["ingest", str(doc)])
    capfd.readouterr()
    assert main(["memory", "list"]) == 0
    listed = capfd.readouterr()
    assert "Ada lives in Porto" in listed.out and no_controls(listed.out + listed.err)
    assert main(["memory", "search", "Porto"]) == 0
    found = capfd.readouterr()
    assert "Porto" in found.out and no_controls(found.out + found.err), repr(found.out)


def test_the_app_shows_stored_text_defused() -> None:
    from tui import formatting
    from tui.widgets.message_bubble import MessageBubble

    evil = f"note {OSC52}{CLEAR}{C1}end"
    assert all(no_controls(str(c)) for c in formatting.cells(evil, TITLE))
    assert no_controls(formatting.clip(evil, 80)) and formatting.clip(evil, 80) == "note end"
    bubble = MessageBubble("user", evil)
    body = next(w for w in bubble.compose() if "body" in w.classes)
    assert no_controls(str(body.render()))
