"""Full-text side of retrieval: safe FTS5 queries from user text, and bounded BM25.

User text never reaches FTS5 syntax directly: it is cut into words (`\\w+`), lower-cased,
quoted and OR-ed, so quotes, `AND`/`NEAR`, `*`, `:` or any unicode cannot raise. Ranking by
BM25 costs time per matching row, so on a large index words that match more than `max_df`
rows (which carry little information anyway) are left out of the candidate query, rarest
words first, within a total budget; the vector side still sees the whole query.

This module does not fuse or fetch hits (see `retrieval`).
"""

from __future__ import annotations

import re

from sqlite_utils import Database

WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 16
MAX_DF = 1000  # rows a word may match and still generate BM25 candidates
DF_BUDGET = 1500  # rows BM25 may rank per query, summed over the kept words
STOPWORDS = frozenset(
    [
        *[
            "a",
            "an",
            "and",
            "are",
            "as",
            "at",
            "be",
            "been",
            "but",
            "by",
            "can",
            "could",
            "did",
            "do",
            "does",
            "for",
            "from",
            "had",
            "has",
            "have",
            "how",
        ],
        *[
            "i",
            "if",
            "in",
            "into",
            "is",
            "it",
            "its",
            "me",
            "my",
            "of",
            "on",
            "or",
            "our",
            "so",
            "than",
            "that",
            "the",
            "their",
            "them",
            "then",
            "there",
        ],
        *[
            "these",
            "they",
            "this",
            "to",
            "was",
            "we",
            "were",
            "what",
            "when",
            "where",
            "which",
            "who",
            "whom",
            "why",
            "will",
            "with",
            "would",
        ],
        *["you", "your"],
    ]
)


def terms(text: str, max_terms: int = MAX_TERMS) -> list[str]:
    """Distinct lower-cased words, stopwords dropped unless nothing else is left.

    >>> terms('What does "NEAR(x" mean? AND/OR')
    ['near', 'x', 'mean']
    """
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(text)))
    kept = [w for w in words if w not in STOPWORDS] or words
    return kept[:max_terms]


def quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(text: str, max_terms: int = MAX_TERMS) -> str | None:
    """The user's text as a safe FTS5 query (None when it has no word at all).

    >>> fts_query('What does "NEAR(x" mean? AND/OR')
    '"near" OR "x" OR "mean"'
    """
    chosen = terms(text, max_terms)
    return " OR ".join(quote(t) for t in chosen) if chosen else None


def doc_freq(db: Database, fts_table: str, term: str, cap: int) -> int:
    """Rows matching `term`, counted up to `cap + 1` (cheap: no ranking)."""
    (count,) = db.execute(
        f"SELECT count(*) FROM (SELECT rowid FROM [{fts_table}] WHERE [{fts_table}] MATCH ? "
        "LIMIT ?)",
        [quote(term), cap + 1],
    ).fetchone()
    return int(count)


def affordable_terms(
    db: Database,
    fts_table: str,
    words: list[str],
    n_rows: int,
    max_df: int = MAX_DF,
    budget: int = DF_BUDGET,
) -> list[str]:
    """The words worth ranking: all of them on a small index; on a large one the rarest that
    match at most `max_df` rows each and `budget` rows together."""
    if n_rows <= max_df:
        return words
    dfs = {w: doc_freq(db, fts_table, w, max_df) for w in words}
    kept: list[str] = []
    total = 0
    for word in sorted(words, key=lambda w: dfs[w]):
        df = dfs[word]
        if df == 0 or df > max_df or (kept and total + df > budget):
            continue
        kept.append(word)
        total += df
    return kept


def bm25_ids(
    db: Database, fts_table: str, content_table: str, words: list[str], n: int
) -> list[str]:
    """Ids of the `n` best BM25 matches of any of `words`, best first."""
    if not words:
        return []
    match = " OR ".join(quote(w) for w in words)
    sql = (
        f"SELECT t.id FROM (SELECT rowid, rank FROM [{fts_table}] WHERE [{fts_table}] MATCH ? "
        f"ORDER BY rank LIMIT ?) f JOIN [{content_table}] t ON t.rowid = f.rowid ORDER BY f.rank"
    )
    return [row[0] for row in db.execute(sql, [match, n])]
