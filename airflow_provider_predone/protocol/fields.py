"""
Checks on the values that cross the wire: ids read from a vendor's answer, before anything
builds a path or URL from them, and names from the user's input, before anything is sent.

An answer may come from a misbehaving service, a TLS-inspecting proxy or a man in the middle,
and may carry keys and presigned URLs. So an unusable field is reported by its name and what
was expected, never by its value: :class:`AnswerFieldError` messages are built from the
field's name and the value's *kind* only, and :func:`shape` describes a whole answer the same
way. :func:`~airflow_provider_predone.protocol.common.read_answer` quotes only these.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any

from airflow_provider_predone.exceptions import InvalidInputError

#: Longest id accepted from an answer; vendors' ids are UUIDs or short tokens.
MAX_ID_LENGTH = 128
#: Largest numeric id accepted from an answer (a signed 64-bit integer, as databases store them).
MAX_NUMERIC_ID = 2**63 - 1
#: Characters an id from an answer may hold: unreserved URL characters and a few more, none of
#: which can change a path (``/``, ``\``), a URL (``%``, ``?``, ``#``) or a log line.
_ID = re.compile(r"[A-Za-z0-9._~:@+=-]+")


class AnswerFieldError(ValueError):
    """
    A field of an answer is missing or unusable. Its message names the field and what was
    expected, and says what came instead without quoting it (it could be a key).

    :param field: the field, as the vendor names it (``classifiers[0].model_id``).
    :param expected: what the field must be.
    :param found: what came instead, from :func:`kind_of` or a reason; never the value.
    """

    def __init__(self, field: str, expected: str, found: str = "") -> None:
        self.field = field
        super().__init__(f"{field} must be {expected}" + (f", got {found}" if found else ""))


class AnswerShapeError(TypeError, AnswerFieldError):
    """
    The answer (or a part of it) is not the JSON object or list the endpoint documents.

    :param field: the part, or ``""`` for the whole answer.
    :param expected: ``a JSON object``, ``a list``.
    :param value: what came instead: only its type is said.
    """

    def __init__(self, field: str, expected: str, value: Any) -> None:
        AnswerFieldError.__init__(self, field or "the answer", expected)
        # Worded as these errors were before they were typed: messages users may match on.
        if field:
            self.args = (f"{field!r} is not {expected}, got {kind_of(value)}",)
        else:
            self.args = (f"expected {expected}, got {type(value).__name__}",)


def kind_of(value: Any) -> str:
    """What a JSON value is, without its content: ``a string of 40 characters``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} fields"
    return type(value).__name__


def shape(value: Any, depth: int = 4, width: int = 12) -> str:
    """
    The structure of an answer with every value replaced by its type, for error messages:
    ``{api_key: str, classifier_id: str, model_id: str}``. Keys longer than 40 characters
    and objects wider than ``width`` are cut.
    """
    if isinstance(value, dict):
        if depth <= 0:
            return "{…}" if value else "{}"
        items = [f"{_key(k)}: {shape(v, depth - 1, width)}" for k, v in list(value.items())[:width]]
        more = ", …" if len(value) > width else ""
        return "{" + ", ".join(items) + more + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return f"[{shape(value[0], depth - 1, width) if depth > 0 else '…'} x {len(value)}]"
    return {type(None): "null", bool: "bool", int: "int", float: "float", str: "str"}.get(type(value), "?")


def _key(key: Any) -> str:
    text = "".join(c if c.isprintable() else "?" for c in str(key))
    return text if len(text) <= 40 else f"{text[:40]}…"


def answer_id(value: Any, field: str) -> str:
    """
    An id read from an answer that will go into a path or URL: a string (or integer) of at
    most :data:`MAX_ID_LENGTH` letters, digits and ``._~:@+=-``, neither ``.`` nor ``..``.

    :raises AnswerFieldError: naming ``field`` and the reason, not the value.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise AnswerFieldError(field, "an id (a string)", kind_of(value))
    expected = f"an id of 1 to {MAX_ID_LENGTH} letters, digits or '._~:@+=-', not '.' or '..'"
    if len(value) > MAX_ID_LENGTH:
        raise AnswerFieldError(field, expected, kind_of(value))
    if not value:
        raise AnswerFieldError(field, expected, "an empty string")
    bad = next((c for c in value if not _ID.fullmatch(c)), None)
    if bad is not None:
        raise AnswerFieldError(field, expected, f"a string containing {_char(bad)}")
    if value in (".", ".."):
        raise AnswerFieldError(field, expected, "a string that names a folder ('.' or '..')")
    return value


def _char(c: str) -> str:
    """One character, for a message: printable ASCII as itself, anything else by code point."""
    return repr(c) if c.isascii() and c.isprintable() else f"U+{ord(c):04X}"


def answer_int(value: Any, field: str, minimum: int = 0) -> int:
    """
    An integer read from an answer (a JSON integer, an integral number or a string of digits)
    between ``minimum`` and :data:`MAX_NUMERIC_ID`.

    :raises AnswerFieldError: naming ``field``, not the value.
    """
    expected = f"an integer from {minimum} to {MAX_NUMERIC_ID}"
    integral = isinstance(value, int) and not isinstance(value, bool)
    integral = integral or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    # Plain ASCII digits only: int() would also take " 7", "1_0" and full-width digits.
    integral = integral or (isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit())
    if not integral:
        raise AnswerFieldError(field, expected, kind_of(value))
    number = int(value)
    if not minimum <= number <= MAX_NUMERIC_ID:
        raise AnswerFieldError(field, expected, "an integer out of that range")
    return number


def optional_answer_int(value: Any, field: str, minimum: int = 0) -> int | None:
    """:func:`answer_int`, with ``None`` for an absent value (``null`` or ``""``)."""
    return None if value is None or value == "" else answer_int(value, field, minimum)


def answer_model_id(value: Any, field: str = "model_id") -> int | None:
    """A model id from an answer: a positive integer of sane size, or ``None`` when absent."""
    return optional_answer_int(value, field, minimum=1)


def sendable_name(value: Any, field: str) -> str:
    """
    A name from the user's input that will be sent (a model name, a file name): text without
    control characters that encodes as UTF-8 (a file name read from disk may hold lone
    surrogates for bytes that were not UTF-8).

    :raises InvalidInputError: naming ``field``, before anything is sent.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{field} {value!r} holds bytes that are not UTF-8 text (at character {exc.start}); rename it"
        ) from None
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise InvalidInputError(f"{field} {value!r} holds the control character U+{ord(bad):04X}; remove it")
    return value
