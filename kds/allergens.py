"""Allergen alerts: which configured allergens an item's text names.

`[allergens]` in config.toml maps an allergen's name to keywords in any
language (`nuts = ["peanut", "nut", "nuss", "orech"]`). Text and keywords are
compared folded: casefolded (ß → ss) and without diacritics (ř → r, ö → o), so
"Erdnuß", "ERDNUSS" and "orechový" all match. A keyword of four letters or
more matches anywhere in a word, because German and Slovak build compounds
("Erdnussbutter" holds "nuss"); a shorter one only at the start of a word, so
"nut" finds "nuts" but not "minute", and "egg" not "veggie". A false alarm
costs a tap; a missed allergen costs more, so the rule leans to matching.

No I/O here: the service calls `for_item` when it builds an order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

#: Keywords shorter than this match only at the start of a word.
ANYWHERE_FROM = 4
#: Letters whose decomposition has no base letter to keep.
_EXTRA_FOLDS = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "æ": "ae", "œ": "oe", "ı": "i"})


def fold(text: str) -> str:
    """Casefolded text without diacritics, for comparing words across spellings."""
    if text.isascii():
        return text.lower()  # the same for ASCII, without decomposing it letter by letter
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_EXTRA_FOLDS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _pattern(keyword: str) -> str:
    folded = re.escape(fold(keyword.strip()))
    return folded if len(keyword.strip()) >= ANYWHERE_FROM else rf"\b{folded}"


class AllergenMatcher:
    """Finds the configured allergens named in an item's name, modifiers and comment."""

    def __init__(self, allergens: Mapping[str, Sequence[str]]) -> None:
        self._names = list(allergens)
        self._by_folded_name = {fold(name): name for name in allergens}
        self._patterns = {
            name: re.compile("|".join(_pattern(k) for k in keywords))
            for name, keywords in allergens.items()
            if keywords
        }

    @property
    def has_keywords(self) -> bool:
        """Whether any allergen has keywords to find in text (else only flags name allergens)."""
        return bool(self._patterns)

    def match(self, *texts: str | None) -> list[str]:
        """The allergens any of `texts` names, in config order."""
        if not self._patterns:
            return []  # nothing configured: no text to fold (this runs per item at ingest)
        folded = "\n".join(fold(t) for t in texts if t)
        if not folded:
            return []
        return [name for name, pattern in self._patterns.items() if pattern.search(folded)]

    def for_item(self, texts: Iterable[str | None], flagged: Iterable[str] = ()) -> list[str]:
        """An item's allergens: configured ones (named in its texts or flagged), then other flags.

        A flag naming a configured allergen (in any case) is that allergen; any
        other flag is kept as the POS sent it.
        """
        found = set(self.match(*texts))
        others: list[str] = []
        for flag in flagged:
            name = self._by_folded_name.get(fold(flag.strip()))
            if name is not None:
                found.add(name)
            elif flag.strip() and flag.strip() not in others:
                others.append(flag.strip())
        return [name for name in self._names if name in found] + others
