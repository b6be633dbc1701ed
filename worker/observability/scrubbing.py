"""Free text without personal data or secrets: the last line of defence for every string.

Two kinds of rule, applied to every string that reaches a log line (the event, values,
tracebacks):

* **Sections that quote data** are cut whole, whatever they contain: PostgreSQL's
  ``DETAIL:`` (``Key (email)=(…) already exists``, ``Failing row contains (…)``) up to the
  next part of a message or traceback, and pydantic's ``input_value=…``. Exceptions are
  described without these in the first place (:mod:`worker.observability.tracebacks`);
  this catches their text where it arrives as a string (a library's log message, ``str(exc)``
  passed as a value).
* **Shapes** are masked wherever they appear: email addresses, phone or card numbers (9+
  digits; dates, times and IP addresses are left alone), passwords in URLs and in
  ``password=…`` form.

Names cannot be recognised in free text: they are kept out by structure (sensitive keys,
described exceptions, the sections above), not by this module.
"""

from __future__ import annotations

import re

MASK = "[redacted]"

# Where a quoting section ends: the next line of a message or traceback that starts a part of
# its own, a blank line, or the end. Lines may be indented or prefixed (exception groups).
_SECTION_END = (
    r"(?=\n[ \t|+-]*(?:HINT:|\[SQL|\(Background on|Traceback \(|File \"|The above exception"
    r"|During handling)|\n\s*\n|\Z)"
)
_SECTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(DETAIL:|Failing row contains|Key \([^)\n]*\)=).*?" + _SECTION_END, re.S),
        rf"\1 {MASK}",
    ),
    # pydantic prints "[type=…, input_value=<repr, one line>, input_type=…]"
    (re.compile(r"input_value=(?:[^\n]*(?=, input_type=)|[^\n]*)"), f"input_value={MASK}"),
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in URLs and DSNs
    (re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s/]*@"), r"\1:***@"),
    # key=value or key: value secrets
    (
        re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key)\b\s*[=:]\s*\S+"),
        r"\1=***",
    ),
    # the local part takes every character RFC 5322 allows unquoted, so none is left behind
    # (but does not start with a quote: "'jane@example.com'" keeps its quotes; a local part of
    # quotes alone, "'@example.com", is still an address)
    (
        re.compile(
            r"(?:[\w.!#$%&*+/=?^`{|}~-][\w.!#$%&'*+/=?^`{|}~-]*|'+(?=@))@[\w-]+(?:\.[\w-]+)+"
        ),
        "[email]",
    ),
)

# Phone numbers and card-like digit runs. Not inside a longer word, number or id (UUIDs,
# versions, IP addresses); a full stop or colon after one ends it, unless a digit follows.
_NUMBER = re.compile(r"(?<![\w.-])\+?\d[\d ().-]{7,}\d(?!\w|[.:-]\d)")
_NOT_PERSONAL = re.compile(r"\d{4}-\d{2}-\d{2}.*|\d{1,3}(\.\d{1,3}){3}")
MIN_PHONE_DIGITS = 9


def _mask_number(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if digits < MIN_PHONE_DIGITS or _NOT_PERSONAL.fullmatch(text.strip()):
        return text
    return "[number]"


# Every rule above needs one of these; most strings (event names, outcomes) have none.
_SUSPECT = re.compile(r"[@:=\d]|Failing row")


def scrub(text: str) -> str:
    """Cut the sections that quote data, then mask whatever looks personal or secret."""
    if _SUSPECT.search(text) is None:
        return text
    for pattern, replacement in (*_SECTIONS, *_PATTERNS):
        text = pattern.sub(replacement, text)
    return _NUMBER.sub(_mask_number, text)
