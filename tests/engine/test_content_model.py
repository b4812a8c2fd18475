"""Record classes: values already of their exact type skip pydantic, and come out as pydantic would give them."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from sitegen import Markdown, Record, Settings, StaticFile
from sitegen.content.model import Invalid, ParseContext, Schema


class Talk(Record):
    title: str
    starts: dt.date
    seats: int
    price: float | None = None
    free: bool = False
    tags: list[str] = []
    hours: dict[str, str] = {}
    summary: Markdown = Markdown()
    poster: StaticFile | None = None


class Festival(Settings):
    tagline: str
    about: Markdown


VALUES = ["Text", " padded ", "", "no", 3, 0, -1, 2.5, True, False, None, dt.date(2024, 2, 29),
          dt.datetime(2024, 2, 29, 12, 0), ["a", "b"], ["a", 1], [], {"Mon": "9-5"}, {"Mon": 5}, {1: "x"},
          [{"label": "Home", "page": "home"}], [{"label": "Home", "page": " home"}], [{"label": "Home"}],
          [{"label": "Home", "page": "home", "icon": "h"}], [{"label": 1, "page": "home"}], ["home"]]


def checked_by_pydantic(schema: Schema, value: dict) -> dict | Invalid:
    try:
        model = schema.validator.model_validate(value)
    except Exception as exc:  # noqa: BLE001 - the error itself is compared as "refused"
        return Invalid((), str(type(exc)))
    return {name: getattr(model, name) for name in schema.names}


@pytest.mark.parametrize("model, required", [
    (Talk, {"title": "A talk", "starts": dt.date(2026, 1, 1), "seats": 40}),
    (Festival, {"title": "Fest", "base_url": "https://fest.example.org/", "tagline": "Loud", "about": "Yes."}),
])
def test_exact_values_come_out_as_pydantic_returns_them_and_the_rest_goes_to_pydantic(model, required):
    schema = Schema(model)
    rng = random.Random(7)
    fast = 0
    for _ in range(3000):
        record = dict(required)
        for name in rng.sample(schema.names + ["unknown"], rng.randint(1, 4)):
            if rng.random() < 0.2:
                record.pop(name, None)
            else:
                record[name] = rng.choice(VALUES)
        record.pop("poster", None)  # a file to find: not part of what pydantic checks
        exact = schema._exact_fields(record)
        if exact is not None:
            fast += 1
            assert exact == checked_by_pydantic(schema, record), record
    assert fast > 50


def test_a_record_read_without_pydantic_is_the_same_record(tmp_path):
    schema = Schema(Talk)
    value = {"title": "A talk", "starts": dt.date(2026, 1, 1), "seats": 40, "summary": "An *evening*."}
    assert schema._exact_fields(value) is not None
    fields = schema.check(value, ParseContext(tmp_path))
    assert fields["summary"].html == "<p>An <em>evening</em>.</p>\n" and fields["tags"] == []
