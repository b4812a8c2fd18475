"""Markdown fields: the plain-line shortcut renders exactly what markdown-it renders."""

from __future__ import annotations

import random

import pytest

from sitegen.content import markdown
from sitegen.content.markdown import PLAIN_LINE, render_markdown

ALPHABET = "abcXYZ éß 0123 .,;:'\"-+=/()?%$@^{}" + "*_`[]<>&!#~|\\\n\t"


def with_markdown_it(source: str) -> str:
    parser = markdown._parser(False)
    return parser.renderer.render(parser.parse(source), parser.options, {})


@pytest.mark.parametrize("source", ["Collects Dutch compound words.", 'Says "hello" twice.', "Élan vital: 3 + 4 = 7?",
                                    "Writes notes longer than the papers they annotate."])
def test_a_plain_line_takes_the_shortcut_and_renders_as_markdown_it_does(source):
    assert PLAIN_LINE.fullmatch(source)
    assert render_markdown(source, "/", allow_html=False) == with_markdown_it(source)


@pytest.mark.parametrize("source", ["*bold*", "1. first", "- item", "# title", "a <b>", "AT&T", "line\nbreak",
                                    "trailing space ", "[a](/b/)", "ends with \\"])
def test_anything_that_may_be_markdown_goes_to_the_parser(source):
    assert not PLAIN_LINE.fullmatch(source)


def test_the_shortcut_agrees_with_markdown_it_on_random_text():
    rng = random.Random(20261202)
    taken = 0
    for _ in range(20_000):
        source = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30)))
        if PLAIN_LINE.fullmatch(source):
            taken += 1
            assert render_markdown(source, "/", allow_html=False) == with_markdown_it(source), repr(source)
    assert taken > 100
