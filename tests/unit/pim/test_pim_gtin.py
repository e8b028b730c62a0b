from __future__ import annotations

import pytest

from accord.domain.errors import InvalidInput
from accord.domain.pim import gtin_check_digit, gtin_problem, is_valid_gtin
from accord.domain.pim.gtin import to_gtin14


@pytest.mark.parametrize(
    "code",
    [
        "96385074",  # GTIN-8
        "036000291452",  # UPC-A / GTIN-12
        "4006381333931",  # EAN-13 / GTIN-13
        "10012345600019",  # GTIN-14
    ],
)
def test_valid_gtins(code: str) -> None:
    assert is_valid_gtin(code)
    assert gtin_check_digit(code[:-1]) == int(code[-1])


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("4006381333932", "check digit 2, expected 1"),
        ("036000291453", "check digit 3, expected 2"),
        ("96385075", "check digit 5, expected 4"),
        ("10012345600011", "check digit 1, expected 9"),
        ("12345", "has 5 digits"),
        ("4006-381333931", "only digits"),
    ],
)
def test_bad_gtins_are_explained(code: str, message: str) -> None:
    problem = gtin_problem(code)
    assert problem is not None and message in problem


def test_to_gtin14_pads_and_rejects_invalid() -> None:
    assert to_gtin14("4006381333931") == "04006381333931"
    with pytest.raises(InvalidInput):
        to_gtin14("4006381333932")
    with pytest.raises(InvalidInput):
        gtin_check_digit("12a")
