"""ASCII fallbacks for characters a printer's code pages cannot print.

A kitchen ticket must never show `?` where a letter was: a cook who reads
"?u?oriedkov?" has to guess. The renderer keeps every character some code page
of the printer's profile can print and passes the rest through `transliterate`,
which knows Slovak, Czech, German and Cyrillic (Russian, Ukrainian, Belarusian,
Serbian, Bulgarian), common typography, and falls back to the Unicode
decomposition (é → e). A character with no ASCII reading at all (an emoji) is
dropped rather than printed as `?`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

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

# Letters whose Unicode decomposition gives no ASCII base (or the wrong one).
_LATIN: dict[str, str] = {
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ø": "o",
    "Ø": "O",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "þ": "th",
    "Þ": "Th",
    "ð": "d",
    "Ð": "D",
    "ı": "i",
    "ħ": "h",
    "Ħ": "H",
    "ŀ": "l",
    "Ŀ": "L",
    "ŉ": "n",
    "ĸ": "k",
    "ſ": "s",
}

# Russian after BGN/PCGN as restaurants write it (Борщ → Borshch), plus the
# Ukrainian, Belarusian, Serbian/Macedonian and Bulgarian letters.
_CYRILLIC: dict[str, str] = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "yo",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "yu",
    "я": "ya",
    # Ukrainian / Belarusian
    "і": "i",
    "ї": "yi",
    "є": "ye",
    "ґ": "g",
    "ў": "w",
    # Serbian / Macedonian
    "ђ": "dj",
    "ј": "j",
    "љ": "lj",
    "њ": "nj",
    "ћ": "c",
    "џ": "dz",
    "ѓ": "gj",
    "ќ": "kj",
    "ѕ": "dz",
}
_CYRILLIC.update(
    {
        upper: (latin[:1].upper() + latin[1:])
        for lower, latin in list(_CYRILLIC.items())
        if (upper := lower.upper()) != lower
    }
)

# Typography a POS likes to send.
_SYMBOLS: dict[str, str] = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2033": '"',
    "\u2039": "<",
    "\u203a": ">",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2015": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u2022": "*",
    "\u00b7": ".",
    "\u2027": ".",
    "\u00a0": " ",
    "\u2007": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u200b": "",
    "\u20ac": "EUR",
    "\u00a3": "GBP",
    "\u00a5": "JPY",
    "\u20bd": "RUB",
    "\u20b4": "UAH",
    "\u00b0": "deg",
    "\u00bd": "1/2",
    "\u00bc": "1/4",
    "\u00be": "3/4",
    "\u00d7": "x",
    "\u00f7": "/",
    "\u2116": "No.",
    "\u2122": "TM",
    "\u00ae": "(R)",
    "\u00a9": "(C)",
    "\u2192": "->",
    "\u2190": "<-",
    "\u00b1": "+/-",
    "\u00a7": "S.",
    "\u00b5": "u",
    "\u00bf": "",
    "\u00a1": "!",
    "\u00ba": "o",
    "\u00aa": "a",
}

_TABLE: dict[str, str] = {**_LATIN, **_CYRILLIC, **_SYMBOLS}

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
    if char in _TABLE:
        return _TABLE[char]
    decomposed = unicodedata.normalize("NFKD", char)
    base = "".join(c for c in decomposed if ord(c) < 128)
    if base:
        return base
    # Combining marks and anything else without a Latin reading.
    return ""


def transliterate(text: str, keep: Callable[[str], bool] | None = None) -> str:
    """Replace what `keep` rejects with its ASCII reading; without `keep`, everything.

    A word with any character the printer cannot print is transliterated
    whole, so it reads consistently ("kolac", not "kolác"). An all-caps word
    stays all-caps (БОРЩ → BORSHCH, not BORShCh).
    """
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
