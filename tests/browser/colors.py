"""Colour contrast measured in the browser from computed styles (WCAG 2 relative luminance)."""

from __future__ import annotations

import time
from typing import Any

#: JS: the contrast ratio of an element's text colour against the background behind it.
CONTRAST = """(el) => {
  if (!el.isConnected) return null;  // replaced by a re-render: no computed style to read
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = (node) => {
    for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const lum = (c) => {
    const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const fg = lum(rgb(getComputedStyle(el).color).slice(0, 3));
  const bg = lum(background(el));
  return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
}"""


def contrast(locator: Any, timeout: float = 5.0) -> float:
    """The contrast ratio of the first element matched by a Playwright `locator`.

    A screen re-renders as the feed and its clock tick; an element replaced between being
    found and being measured has no computed style, so it is found again (bounded).
    """
    deadline = time.monotonic() + timeout
    while (ratio := locator.first.evaluate(CONTRAST)) is None and time.monotonic() < deadline:
        pass
    assert ratio is not None, "the element kept being replaced while its contrast was measured"
    return float(ratio)
