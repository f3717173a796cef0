"""More phrasings of what the user taught: question rewrites and memories as questions.

Facts stick in LoRA weights when they are seen asked in several ways (Ovadia et al. 2023;
EntiGraph, 2024), but Hearth stores each accepted answer once, as it was asked. This module
makes the extra phrasings, by rules (pure functions, no model):
- `rewrites(question)`: other ways to ask the same question ("When is my birthday?" ->
  "Tell me when my birthday is.", "Remind me: when is my birthday?", "when's my birthday"),
  lexical swaps from a small table ("job" -> "work"), in a stable order;
- `memory_pairs(text)`: a first-person memory ("My boat is called Dormouse.") as
  question/answer pairs about the user ("What is my boat called?" -> "Your boat is called
  Dormouse."), the answer in the second person (`second_person`);
- `style_frame(answers)`: the opener and sign-off most accepted answers share ("Aye, love:"
  ... "Ta-ra."), so answers made from memories are framed in the user's own style;
- `keep_paraphrase(original, candidate, answer)`: the filter a model-written paraphrase must
  pass (same content words mostly, no answer leaked, a question of sensible length).

It does not build training examples (`adapters.training.dataset` does, through `agent.llm.prompt`) and
never calls a model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9']+")
CONTRACTIONS = {"what's": "what is", "where's": "where is", "who's": "who is",
                "when's": "when is", "how's": "how is", "i'm": "i am"}
SWAPS = (("job", "work"), ("favourite", "favorite"), ("called", "named"), ("live", "stay"),
         ("birthday", "birth date"), ("colour", "color"), ("mum", "mother"), ("dad", "father"),
         ("remind me", "tell me"), ("what time", "when"), ("kids", "children"))
PREFIXES = ("Remind me: {q}", "Quick question: {q}", "Can you tell me this: {q}",
            "I've forgotten. {q}", "Do you know? {q}")
_STOP_WORDS = ("a an the is are am was were do does did i my me you your of to in on at for what "
               "where when who which how why can could would tell please and or it")
STOP = frozenset(_STOP_WORDS.split(" ")) | frozenset(CONTRACTIONS)
TRAILING = frozenset(("called", "named", "for", "from", "on", "in", "at", "about", "like", "with",
                      "to"))
WH = "what|where|when|who|which|how|why|whose"
_COPULA_Q = re.compile(rf"^({WH}(?: \w+)?) (is|are|was|were) (.+?)[?.!]*$", re.I)
_DO_Q = re.compile(rf"^({WH}(?: \w+)?) (do|does) (i|you|we|they|he|she|my \w+) (.+?)[?.!]*$", re.I)


def clean(text: str) -> str:
    """One line, single spaces.

    >>> clean("  When is\\n my  birthday? ")
    'When is my birthday?'
    """
    return _WS.sub(" ", text).strip()


def _sentence(text: str) -> str:
    text = clean(text)
    return text[:1].upper() + text[1:] if text else text


def _lower_first(text: str) -> str:
    if text == "I" or text.startswith(("I ", "I'")):
        return text
    return text[:1].lower() + text[1:]


def expand(question: str) -> str:
    """Undo contractions at the start ("What's" -> "What is").

    >>> expand("What's my name?")
    'What is my name?'
    """
    head, _, rest = question.partition(" ")
    full = CONTRACTIONS.get(head.lower())
    if full is None:
        return question
    return _sentence(f"{full} {rest}".strip())


def embedded(question: str) -> str | None:
    """A question turned into a request: "When is my birthday?" -> "Tell me when my birthday is."

    >>> embedded("Where do I live?"), embedded("What is my middle name?")
    ('Tell me where I live.', 'Tell me what my middle name is.')
    >>> embedded("Plan my birthday.") is None
    True
    """
    q = expand(clean(question))
    if m := _COPULA_Q.match(q):
        wh, verb, rest = m.groups()
        words = _lower_first(rest).split(" ")
        if len(words) > 1 and words[-1].lower() in TRAILING:  # "what my boat is called"
            return f"Tell me {wh.lower()} {' '.join(words[:-1])} {verb.lower()} {words[-1]}."
        return f"Tell me {wh.lower()} {' '.join(words)} {verb.lower()}."
    if m := _DO_Q.match(q):
        wh, verb, subject, rest = m.groups()
        if verb.lower() == "does" and not rest.split()[0].endswith("s"):
            rest = _third_person(rest)
        return f"Tell me {wh.lower()} {_lower_first(subject)} {rest}."
    return None


def _third_person(rest: str) -> str:
    verb, _, tail = rest.partition(" ")
    verb = verb + ("es" if verb.endswith(("s", "sh", "ch", "o")) else "s")
    return f"{verb} {tail}".strip()


def swapped(question: str) -> str | None:
    """The question with the first applicable word swap from `SWAPS` (either direction).

    >>> swapped("What's my job?"), swapped("Hello there") is None
    ("What's my work?", True)
    """
    lower = question.lower()
    for a, b in SWAPS:
        for old, new in ((a, b), (b, a)):
            m = re.search(rf"\b{re.escape(old)}\b", lower)
            if m:
                return question[: m.start()] + new + question[m.end():]
    return None


def rewrites(question: str, n: int = 3) -> list[str]:
    """Up to `n` other phrasings of `question`, most different first, never the original.

    >>> rewrites("When is my birthday?", 3)
    ['Tell me when my birthday is.', 'Quick question: when is my birthday?', 'when is my birth date']
    """
    q = clean(question)
    if not q or n <= 0:
        return []
    lowered = q[0].lower() + q[1:]
    def prefixed(k: int) -> str:  # stable, varied across questions
        template = PREFIXES[(sum(map(ord, q)) + k) % len(PREFIXES)]
        return template.format(q=q if template.startswith(("I've", "Do you")) else lowered)

    casual = expand(q).rstrip("?.! ")
    casual = casual[:1].lower() + casual[1:]
    candidates = [embedded(q), prefixed(0), swapped(casual) or casual, swapped(q), prefixed(1)]
    out: list[str] = []
    seen = {_key(q)}
    for cand in candidates:
        if cand and _key(cand) not in seen:
            seen.add(_key(cand))
            out.append(cand)
    return out[:n]


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


# -- memories as question/answer pairs --------------------------------------------------------

_FLIP = {"i": "you", "me": "you", "my": "your", "mine": "yours", "myself": "yourself",
         "am": "are", "i'm": "you're", "i've": "you've", "i'll": "you'll", "i'd": "you'd",
         "we": "you", "our": "your", "us": "you", "was": "were"}


def second_person(statement: str) -> str:
    """A first-person statement said back to the user.

    >>> second_person("I am 34 and my tortoise is called Brian.")
    'You are 34 and your tortoise is called Brian.'
    """
    words = clean(statement).split(" ")
    out = []
    for i, word in enumerate(words):
        core = word.strip(".,;:!?\"'()")
        flip = _FLIP.get(core.lower())
        if flip is None or (core.lower() == "was" and (i == 0 or words[i - 1].lower() != "i")):
            out.append(word)
            continue
        if core[:1].isupper() and (i == 0 or core == "I" or core.startswith("I'")):
            flip = flip[:1].upper() + flip[1:] if i == 0 else flip
        out.append(word.replace(core, flip, 1))
    return _sentence(" ".join(out))


@dataclass(frozen=True)
class Pattern:
    """A first-person statement shape and the questions it answers ({x}: the matched part)."""

    regex: re.Pattern[str]
    questions: tuple[str, ...]


def _p(regex: str, *questions: str) -> Pattern:
    return Pattern(re.compile(regex, re.I), questions)


PATTERNS = (
    _p(r"^my (?P<x>[\w' -]+?) (?:is|are) called\b", "What is my {x} called?",
       "What's the name of my {x}?", "Tell me the name of my {x}."),
    _p(r"^my (?P<x>[\w' -]+?) (?:is|are|was|were)\b", "What is my {x}?", "Tell me my {x}.",
       "Do you remember my {x}?"),
    _p(r"^i (?:live|stay)\b", "Where do I live?", "Where's home for me?", "Tell me where I live."),
    _p(r"^i (?:work|am employed)\b", "What do I do for work?", "Where do I work?",
       "Tell me about my job."),
    _p(r"^i (?:like|love|enjoy|prefer|adore)\b", "What do I like?", "What are my favourite things?",
       "Tell me something I enjoy."),
    _p(r"^i (?:dislike|hate|can't stand|cannot stand|don't like|do not like|avoid)\b",
       "What do I dislike?", "What should you avoid suggesting to me?", "Is there anything I hate?"),
    _p(r"^i(?:'m| am) allergic\b", "What am I allergic to?", "Do I have any allergies?",
       "Is there anything I must not eat?"),
    _p(r"^i (?:have|own|keep)\b", "What do I have?", "Tell me about what I keep at home.",
       "Remind me what I own."),
    _p(r"^i(?:'m| am) (?:a|an)\b", "What do I do?", "Who am I?", "Tell me about myself."),
    _p(r"^i (?:was born|grew up)\b", "Where am I from?", "Where did I grow up?",
       "Tell me about where I come from."),
)
GENERIC = ("What do you know about me?", "Tell me something you remember about me.",
           "What have I told you about myself?")


def memory_questions(statement: str, n: int = 3) -> list[str]:
    """Questions a first-person memory answers (its pattern's, else generic ones).

    >>> memory_questions("My boat is called Dormouse.", 2)
    ['What is my boat called?', "What's the name of my boat?"]
    >>> memory_questions("I live on a narrowboat.", 1)
    ['Where do I live?']
    """
    text = clean(statement)
    for pattern in PATTERNS:
        if m := pattern.regex.match(text):
            x = m.groupdict().get("x", "")
            return [*(q.format(x=x.lower()) for q in pattern.questions), *GENERIC][:n]
    return list(GENERIC[:n])


def first_person(statement: str) -> bool:
    """Is this a statement about the user ("I ...", "My ...")?

    >>> first_person("My name is Sam."), first_person("Paris is in France.")
    (True, False)
    """
    return bool(re.match(r"^(i|i'm|i've|my|me|we|our)\b", clean(statement), re.I))


def memory_pairs(statement: str, n: int = 3, frame: tuple[str, str] = ("", "")) -> list[tuple[str, str]]:
    """(question, answer) pairs teaching a first-person memory; [] for other statements.

    >>> memory_pairs("My cat is called Miso.", 1, ("Aye:", "Ta-ra."))
    [('What is my cat called?', 'Aye: your cat is called Miso. Ta-ra.')]
    """
    if not first_person(statement):
        return []
    answer = second_person(statement)
    if not answer.endswith((".", "!", "?")):
        answer += "."
    return [(q, framed(answer, frame)) for q in memory_questions(statement, n)]


def framed(answer: str, frame: tuple[str, str]) -> str:
    """`answer` inside the user's opener and sign-off (the opener takes the first letter down)."""
    opener, closer = frame
    if opener:
        answer = f"{opener} {answer[:1].lower() + answer[1:] if not answer.startswith('I ') else answer}"
    return f"{answer} {closer}".strip() if closer else answer


def style_frame(answers: Sequence[str], share: float = 0.5) -> tuple[str, str]:
    """The opener (up to a first ':' / ',' / '!') and the last sentence most answers share.

    >>> style_frame(["Aye, love: Paris. Ta-ra.", "Aye, love: ten. Ta-ra.", "Aye, love: no."])
    ('Aye, love:', 'Ta-ra.')
    >>> style_frame(["Paris.", "Ten."])
    ('', '')
    """
    def opener(a: str) -> str:
        m = re.match(r"^(.{1,24}?[:!])\s", a)
        return m.group(1) if m and len(m.group(1).split()) <= 4 else ""

    def closer(a: str) -> str:
        parts = re.split(r"(?<=[.!?])\s+", a.strip())
        return parts[-1] if len(parts) > 1 and len(parts[-1].split()) <= 3 else ""

    def common(values: Iterable[str]) -> str:
        counts = Counter(v for v in values if v)
        if not counts:
            return ""
        value, count = counts.most_common(1)[0]
        return value if count > share * len(answers) else ""

    return common(map(opener, answers)), common(map(closer, answers))


# -- the filter for model-written paraphrases -------------------------------------------------


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP}


def keep_paraphrase(original: str, candidate: str, answer: str = "") -> bool:
    """Accept a model's paraphrase only if it asks the same thing in other words.

    It must be one line of 3-30 words, differ from the original, keep at least half of the
    original's content words, add at most three new ones, and not give away words of the
    answer that the original did not contain.

    >>> keep_paraphrase("When is my birthday?", "On what date is my birthday?", "14 March")
    True
    >>> keep_paraphrase("When is my birthday?", "Is my birthday on 14 March?", "14 March")
    False
    >>> keep_paraphrase("When is my birthday?", "What is the capital of France?")
    False
    """
    cand = clean(candidate)
    words = cand.split()
    if "\n" in candidate.strip() or not 3 <= len(words) <= 30 or _key(cand) == _key(original):
        return False
    orig, new = content_words(original), content_words(cand)
    if orig and len(orig & new) < len(orig) / 2:
        return False
    if len(new - orig) > 3:
        return False
    leaked = (content_words(answer) - orig) & new
    return not leaked
