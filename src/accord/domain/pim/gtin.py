"""GS1 GTIN check digits (GTIN-8, GTIN-12/UPC-A, GTIN-13/EAN-13, GTIN-14).

The check digit is the last digit. From the rightmost data digit leftwards, digits are weighted 3, 1, 3, 1...;
the check digit brings the weighted sum up to the next multiple of ten.
"""

from __future__ import annotations

from accord.domain.errors import InvalidInput

GTIN_LENGTHS = (8, 12, 13, 14)


def gtin_check_digit(data_digits: str) -> int:
    """The check digit for ``data_digits`` (a GTIN without its last digit)."""
    if not data_digits.isascii() or not data_digits.isdigit():
        raise InvalidInput(f"GTIN data must be digits, got {data_digits!r}")
    total = 0
    for i, ch in enumerate(reversed(data_digits)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def gtin_problem(code: str) -> str | None:
    """None when ``code`` is a well-formed GTIN with a correct check digit, else why not (one line)."""
    if not code.isascii() or not code.isdigit():
        return f"GTIN {code!r} must contain only digits"
    if len(code) not in GTIN_LENGTHS:
        return f"GTIN {code!r} has {len(code)} digits; expected 8, 12, 13 or 14"
    expected = gtin_check_digit(code[:-1])
    if int(code[-1]) != expected:
        return f"GTIN {code} has check digit {code[-1]}, expected {expected}"
    return None


def is_valid_gtin(code: str) -> bool:
    return gtin_problem(code) is None


def to_gtin14(code: str) -> str:
    """Left-pad a valid GTIN to 14 digits (the form GS1 uses for comparison)."""
    problem = gtin_problem(code)
    if problem is not None:
        raise InvalidInput(problem)
    return code.rjust(14, "0")
