"""Text made safe to show on a terminal: the one sanitiser for everything Hearth prints.

Stored text (memories, documents and their file names, answers, adapter reasons, log lines)
is data and may hold terminal control sequences: OSC 52 writes the clipboard, OSC 0 sets the
window title, CSI 2J clears the screen, C1 bytes (U+0080-U+009F) are 8-bit introducers of
the same. `terminal_safe` removes whole escape sequences where it can recognise them and then
every remaining control character, so even a sequence split across two writes is harmless:
no ESC or C1 byte ever reaches the terminal. Lone surrogates (undecodable bytes from argv or
file names) become U+FFFD, so printing never raises UnicodeEncodeError. Bidirectional
overrides (U+202A-U+202E, U+2066-U+2069) are removed as well: they reorder what is shown.

`SafeStream` wraps a text stream so every write goes through `terminal_safe` (the CLI wraps
stdout and stderr once, so no print can forget it). This module does not decide *what* is
printed, and it does not escape for Textual markup (the app renders text with markup off).
"""

from __future__ import annotations

import re
from typing import Any, TextIO

# ESC [ ... final (CSI), ESC ] ... BEL/ST (OSC), ESC P/X/^/_ ... ST (DCS, SOS, PM, APC),
# ESC + one character; and their 8-bit C1 forms.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -/]*[0-~]",
    re.DOTALL,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _controls(keep: str) -> re.Pattern[str]:
    chars = "".join(chr(c) for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]
                    if chr(c) not in keep)
    return re.compile("[" + re.escape(chars + _BIDI) + "]")


_KEEP_LINES = _controls("\n\t")
_ONE_LINE = _controls("")
_STREAM = _controls("\n\t\r")  # \r: progress bars redraw their line


def terminal_safe(text: str, newlines: bool = True, _pattern: re.Pattern[str] | None = None) -> str:
    """`text` with escape sequences, control characters and lone surrogates defused.

    Tabs and (with `newlines`) line feeds stay; with `newlines=False` every control
    character, line feeds included, becomes a space, for one-line fields.

    >>> terminal_safe("hi \\x1b]52;c;cHduZWQ=\\x07there\\x1b[2J\\x9b31m!")
    'hi there!'
    >>> terminal_safe("a\\nb", newlines=False)
    'a b'
    >>> terminal_safe("bad \\udce9 byte")
    'bad \\ufffd byte'
    """
    text = _SURROGATE.sub("\ufffd", text)
    text = _SEQUENCE.sub("", text)
    pattern = _pattern or (_KEEP_LINES if newlines else _ONE_LINE)
    return pattern.sub("" if newlines or _pattern is not None else " ", text)


class SafeStream:
    """A text stream whose writes are passed through `terminal_safe` (keeping \\r for
    progress bars). Everything else is delegated to the wrapped stream."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text, _pattern=_STREAM))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
