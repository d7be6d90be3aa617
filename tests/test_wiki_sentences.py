"""Sentence splitting robust to abbreviations, initials, decimals, quotes."""

from __future__ import annotations

import pytest

from wikipersona_data.wiki.sentences import split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Dr. Smith met Mr. Jones in St. Louis. They talked.",
            ["Dr. Smith met Mr. Jones in St. Louis.", "They talked."],
        ),
        ("J. K. Rowling wrote it. It sold.", ["J. K. Rowling wrote it.", "It sold."]),
        ("He was No. 1 in the U.S. in 1990. Then he fell.", ["He was No. 1 in the U.S. in 1990.", "Then he fell."]),
        ("It cost 3.5 million c. 1900. Then more.", ["It cost 3.5 million c. 1900.", "Then more."]),
        ('He said "Go home." She left.', ['He said "Go home."', "She left."]),
        (
            "Martin Luther King Jr. was born in Atlanta. He died.",
            ["Martin Luther King Jr. was born in Atlanta.", "He died."],
        ),
        ("A first line.\nA second paragraph here.", ["A first line.", "A second paragraph here."]),
        ("", []),
    ],
)
def test_split(text, expected):
    assert split_sentences(text) == expected


def test_paragraphs_never_share_a_sentence():
    assert split_sentences("No final stop\nNext one.") == ["No final stop", "Next one."]


def test_deterministic():
    text = "One. Two? Three! Four... five. Six (c. 1900) ended."
    assert split_sentences(text) == split_sentences(text)
