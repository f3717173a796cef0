"""Small pure helpers that turn stored values into short cell text.

No widgets and no I/O here, so the screens stay about layout and the helpers are easy to test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text


def cells(*values: str) -> list[Text]:
    """Table cells shown literally: DataTable reads plain strings as markup, and stored text
    (a memory like "use [x] for done") must not be taken for styles.

    >>> [str(c) for c in cells("[b]x[/b]", "2")]
    ['[b]x[/b]', '2']
    """
    return [Text(value) for value in values]


def short_date(iso: str | None) -> str:
    """'2026-11-23 14:05' from an ISO timestamp ('' for None).

    >>> short_date("2026-11-23T14:05:09.123456+00:00")
    '2026-11-23 14:05'
    """
    if not iso:
        return ""
    return iso[:16].replace("T", " ")


def clip(text: str, width: int) -> str:
    """One line of at most `width` characters, with an ellipsis when cut.

    >>> clip("a  long\\nline here", 9)
    'a long l…'
    """
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def short_path(path: str, width: int = 52) -> str:
    """A path for a table cell: home as '~', cut from the left to fit.

    >>> short_path("/home/ann/notes/garden.md", 14).endswith("garden.md")
    True
    >>> len(short_path("/a/very/long/path/to/some/file.txt", 14))
    14
    """

    home = str(Path.home())
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        path = "~" + path[len(home):]
    return path if len(path) <= width else "…" + path[-(width - 1):]


def number(value: Any, digits: int = 3) -> str:
    """A metric for a table cell ('–' when missing).

    >>> number(2.71828), number(None), number(12)
    ('2.718', '–', '12')
    """
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def nll_change(metrics: dict[str, Any] | None, name: str) -> str:
    """A gate metric for the table: the candidate's value and its change vs the reference.

    >>> nll_change({"candidate": {"personal_nll": 1.8}, "reference": {"personal_nll": 2.0}},
    ...            "personal_nll")
    '1.800 (-10%)'
    >>> nll_change({}, "probe_nll")
    '–'
    """
    candidate = ((metrics or {}).get("candidate") or {}).get(name)
    reference = ((metrics or {}).get("reference") or {}).get(name)
    if not isinstance(candidate, int | float):
        return "–"
    if not isinstance(reference, int | float) or not reference:
        return f"{candidate:.3f}"
    return f"{candidate:.3f} ({(candidate - reference) / reference:+.0%})"


def tokens_per_s(value: float | None) -> str:
    """'12.3 tok/s' or '– tok/s'.

    >>> tokens_per_s(12.345), tokens_per_s(None)
    ('12.3 tok/s', '– tok/s')
    """
    return "– tok/s" if value is None else f"{value:.1f} tok/s"
