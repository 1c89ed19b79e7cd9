"""Region coverage of licences (markets, subdivisions, GLOBAL) and input normalisation."""

from __future__ import annotations

import pytest

from distillwarden.store.errors import InvalidInput
from distillwarden.store.validation import (
    normalize_channel,
    normalize_regions,
    region_covered,
)


@pytest.mark.parametrize(
    ("licence", "region", "covered"),
    [
        ([], "ZZ", True),
        (["GLOBAL"], "BR", True),
        (["US"], "us", True),
        (["US"], "US-CA", True),
        (["US-CA"], "US", False),
        (["US-CA"], "US-CA", True),
        (["EU"], "DE", True),
        (["EU"], "DE-BY", True),
        (["EU"], "NO", False),
        (["EEA"], "NO", True),
        (["EU"], "GB", False),
        (["APAC"], "APAC", True),
        (["APAC"], "JP", False),
        (["SG", "JP"], "CN", False),
        (["SG"], None, False),
        (["SG"], "", False),
    ],
)
def test_region_covered(licence: list[str], region: str | None, covered: bool) -> None:
    assert region_covered(licence, region) is covered


def test_normalisation() -> None:
    assert normalize_regions("us, de ,us") == ["US", "DE"]
    assert normalize_regions(["eu", "us-ca"]) == ["EU", "US-CA"]
    assert normalize_channel(" reseller:cloud.co ") == "reseller:cloud.co"
    with pytest.raises(InvalidInput, match="reseller:<name>"):
        normalize_channel("reseller:bad name")
