"""Allergen matching: casefolded, diacritics-insensitive, any language, on word starts for short keywords."""

from __future__ import annotations

import pytest

from kds.allergens import AllergenMatcher
from kds.config import ConfigError, settings_from_dict

NUTS_GLUTEN = {
    "nuts": ["peanut", "nut", "nuss", "orech", "орех"],
    "gluten": ["gluten", "lepok"],
    "egg": ["egg"],
}


@pytest.fixture
def matcher() -> AllergenMatcher:
    return AllergenMatcher(NUTS_GLUTEN)


@pytest.mark.parametrize(
    "text",
    [
        "Erdnußbutter",  # ß casefolds to ss; "nuss" inside a German compound
        "ERDNUSS",
        "Orechy",  # Slovak, capitalised
        "orechový koláč",  # diacritics on the word, not the keyword
        "Peanuts",
        "salted nuts",
        "Торт с орехами",  # Cyrillic
        "Ořech",  # Czech ř folds to r
    ],
)
def test_nut_words_match(matcher: AllergenMatcher, text: str) -> None:
    # Every spelling a POS or a waiter types names the allergen.
    assert matcher.match(text) == ["nuts"]


@pytest.mark.parametrize("text", ["minute steak", "coconut water", "Beef burger", "veggie"])
def test_short_keywords_only_at_a_word_start(matcher: AllergenMatcher, text: str) -> None:
    # "nut" and "egg" are short: inside another word ("minute", "veggie") they mean nothing.
    assert matcher.match(text) == []


def test_name_modifiers_and_comment_all_count(matcher: AllergenMatcher) -> None:
    # Several texts: each allergen once, in config order.
    assert matcher.match("Burger", "+ egg", "ALLERGY: gluten, peanuts") == ["nuts", "gluten", "egg"]


def test_flagged_by_the_pos_are_kept(matcher: AllergenMatcher) -> None:
    # A POS flag not in config is shown as sent; a flagged configured one is not repeated.
    assert matcher.for_item(["Salad"], flagged=["sesame", "nuts"]) == ["nuts", "sesame"]
    assert matcher.for_item(["Peanut satay"], flagged=["Nuts"]) == ["nuts"]


def test_no_config_matches_nothing() -> None:
    assert AllergenMatcher({}).match("peanut") == []


def test_config_section_is_validated() -> None:
    # [allergens] name = keywords; an empty keyword list or keyword is named in the error.
    base = {"endpoints": [{"name": "grill"}]}
    settings = settings_from_dict({**base, "allergens": NUTS_GLUTEN})
    assert settings.allergens["nuts"][0] == "peanut"
    with pytest.raises(ConfigError, match="allergens.nuts"):
        settings_from_dict({**base, "allergens": {"nuts": []}})
    with pytest.raises(ConfigError, match="allergens.gluten"):
        settings_from_dict({**base, "allergens": {"gluten": ["  "]}})


def test_ascii_text_folds_as_the_unicode_path_does() -> None:
    # fold() takes a shortcut for ASCII text (the common case, per item at ingest): same result.
    import unicodedata

    from kds.allergens import fold

    text = "".join(chr(c) for c in range(32, 127)) + " ERDNUSS Caesar Salad"
    slow = "".join(
        c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c)
    )
    assert fold(text) == slow


def test_no_configured_allergens_match_nothing_but_flags_are_kept() -> None:
    # Without [allergens] nothing is matched (and no text folded), POS flags still count.
    empty = AllergenMatcher({})
    assert empty.match("peanut butter") == []
    assert empty.for_item(["peanut butter"], ["Nuts", " nuts "]) == ["Nuts", "nuts"]
