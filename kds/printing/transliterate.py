"""ASCII fallbacks for characters a printer's code pages cannot print.

A kitchen ticket must never show `?` where a letter was: a cook who reads
"?u?oriedkov?" has to guess. The renderer keeps every character some code page
of the printer's profile can print and passes the rest through `transliterate`.
The readings come from `anyascii` (every script: Cyrillic, Greek, CJK, signs —
Борщ → Borshch, γύρος → gyros, ⅓ → 1/3); kds adds only what a kitchen reads
differently: German umlauts as two letters outside Slavic words (Größe →
Groesse, but mäso → maso), Russian menu spelling (ё → yo, no ' for ъ ь), whole
words transliterated alike and all-caps words kept all-caps. An emoji and a `?`
that the text did not have are dropped rather than printed.
"""

from __future__ import annotations

from collections.abc import Callable

from anyascii import anyascii

# German umlauts read best as two letters (Größe → Groesse); in a Slovak word
# ä is just a (mäso → maso). `_word_is_slavic` picks which one applies.
_GERMAN: dict[str, str] = {
    "ä": "ae",
    "ö": "oe",
    "ü": "ue",
    "Ä": "Ae",
    "Ö": "Oe",
    "Ü": "Ue",
    "ß": "ss",
    "ẞ": "SS",
}

# Where menus spell Cyrillic unlike anyascii: BGN/PCGN as restaurants write it
# (Ёлка → Yolka, Їжак → Yizhak), hard and soft signs left out (Фасоль → Fasol).
_READINGS: dict[str, str] = {
    "ё": "yo",
    "Ё": "Yo",
    "є": "ye",
    "Є": "Ye",
    "ї": "yi",
    "Ї": "Yi",
    "ў": "w",
    "Ў": "W",
    "ъ": "",
    "Ъ": "",
    "ь": "",
    "Ь": "",
    "№": "No.",
}

# Letters that only occur in Slavic Latin script: their presence in a word
# means ä/ö/ü there are not German umlauts.
_SLAVIC_MARKS = frozenset("čďěľĺňŕřšťůýžôČĎĚĽĹŇŔŘŠŤŮÝŽÔ")


def _word_is_slavic(text: str, index: int) -> bool:
    """True when the word around `index` contains a Slovak/Czech-only letter."""
    start = index
    while start > 0 and text[start - 1].isalpha():
        start -= 1
    end = index
    while end < len(text) and text[end].isalpha():
        end += 1
    return any(ch in _SLAVIC_MARKS for ch in text[start:end])


def ascii_of(char: str, *, slavic: bool = False) -> str:
    """An ASCII rendering of one character ("" when it has none)."""
    if ord(char) < 128:
        return char
    if char in _GERMAN and not slavic:
        return _GERMAN[char]
    if char in _READINGS:
        return _READINGS[char]
    latin = anyascii(char)
    if latin.startswith(":") and latin.endswith(":") and len(latin) > 2:
        return ""  # an emoji's name (":hot_pepper:") is markup on a narrow ticket, not a word
    return latin.replace("?", "")  # ¿ ‽: no `?` the POS did not send


def transliterate(text: str, keep: Callable[[str], bool] | None = None) -> str:
    """Replace what `keep` rejects with its ASCII reading; without `keep`, everything.

    A word with any character the printer cannot print is transliterated
    whole, so it reads consistently ("kolac", not "kolác"). An all-caps word
    stays all-caps (БОРЩ → BORSHCH, not BORShCh).
    """
    if text.isascii():  # most of a ticket: nothing to replace
        return text
    out: list[str] = []
    word_ascii = False
    for index, char in enumerate(text):
        if not char.isalpha():
            word_ascii = False
        elif index == 0 or not text[index - 1].isalpha():
            word_ascii = keep is None or not all(
                keep(c) for c in _word_at(text, index) if ord(c) >= 128
            )
        if ord(char) < 128 or (keep is not None and not word_ascii and keep(char)):
            out.append(char)
            continue
        if keep is not None and not char.isalpha() and keep(char):
            out.append(char)
            continue
        latin = ascii_of(char, slavic=_word_is_slavic(text, index))
        if len(latin) > 1 and char.isupper() and _next_is_upper(text, index):
            latin = latin.upper()
        out.append(latin)
    return "".join(out)


def _word_at(text: str, start: int) -> str:
    """The run of letters starting at `start`."""
    end = start
    while end < len(text) and text[end].isalpha():
        end += 1
    return text[start:end]


def _next_is_upper(text: str, index: int) -> bool:
    """True when a neighbouring letter is upper case too (an all-caps word)."""
    for neighbour in (index + 1, index - 1):
        if 0 <= neighbour < len(text) and text[neighbour].isalpha():
            return text[neighbour].isupper()
    return False
