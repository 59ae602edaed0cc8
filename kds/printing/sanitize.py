"""POS text made safe for an ESC/POS byte stream.

A printer takes every byte below 0x20 (and a few above) as the start of a
command: `ESC i` cuts, `ESC p` kicks the cash drawer, `ESC d n` feeds n lines,
`ESC @` resets. Text from a POS (item names, comments, modifiers, customer,
table, waiter) is untrusted, so before the renderer lays it out every POS
string goes through `clean_text`: line breaks become "\\n" (the renderer turns
them into wrapped lines of their own), tabs become spaces, and every other
control, format, surrogate, private-use or unassigned character (Unicode
category C: C0, DEL, C1, bidi and zero-width marks …) is dropped. What is left
is printable text; transliteration then maps it to the printer's code pages
and never produces a control byte.
"""

from __future__ import annotations

import re
import unicodedata

#: Line breaks a POS may send: CRLF, CR, LF, NEL, line and paragraph separators.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def clean_text(text: str) -> str:
    """`text` with line breaks as "\\n", tabs as spaces and every other control character removed."""
    if text.isprintable():  # the common case: nothing to do
        return text
    lines = _LINE_BREAK.split(text)
    return "\n".join(_clean_line(line) for line in lines)


def _clean_line(line: str) -> str:
    """One line without control characters (tabs become spaces)."""
    if line.isprintable():
        return line
    return "".join(
        " " if char == "\t" else char
        for char in line
        if char == "\t" or not unicodedata.category(char).startswith("C")
    )
