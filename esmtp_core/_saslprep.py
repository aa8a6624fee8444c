"""SASLprep (RFC 4013): the stringprep (RFC 3454) profile for user names and passwords.

Built only on the standard library: :mod:`stringprep` holds the RFC 3454 tables and
:data:`unicodedata.ucd_3_2_0` the Unicode 3.2 database that stringprep is defined against (a newer
database would normalise some characters differently from every other implementation).

The profile, step by step (RFC 4013 §2, RFC 3454 §3-§7):

1. map non-ASCII space characters (table C.1.2) to SPACE (U+0020) and the "commonly mapped to
   nothing" characters (table B.1, e.g. SOFT HYPHEN) to nothing;
2. normalise with Unicode form KC;
3. prohibit the characters of tables C.1.2, C.2.1, C.2.2, C.3 to C.9 (controls, private use,
   non-characters, surrogates, ...);
4. check bidirectional text (RFC 3454 §6);
5. unassigned code points (table A.1) are prohibited in *stored* strings and allowed in *queries*
   (RFC 3454 §7). SCRAM (RFC 5802 §5.1) prepares names and passwords as queries.
"""

from __future__ import annotations

import stringprep
import unicodedata

__all__ = ["SaslprepError", "saslprep"]


class SaslprepError(ValueError):
    """The string contains a character SASLprep prohibits, or fails the bidirectional check."""


# Step 3, RFC 4013 §2.3. C.1.1 (ASCII SPACE) is deliberately *not* prohibited.
_PROHIBITED = (
    stringprep.in_table_c12,  # non-ASCII space characters
    stringprep.in_table_c21_c22,  # ASCII and non-ASCII control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogate code points
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties or deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str, *, allow_unassigned: bool = True) -> str:
    """Prepare ``text`` with the SASLprep profile (RFC 4013 §2) and return the result.

    ``allow_unassigned=True`` (the default) treats ``text`` as a *query* string, as SCRAM and PLAIN
    verification do; pass ``False`` for a *stored* string (a password about to be saved), where
    unassigned code points are an error (RFC 3454 §7). The result may be empty (for example when
    the input is only a SOFT HYPHEN); callers decide whether an empty name is acceptable.

    Raises :class:`SaslprepError` for prohibited characters or a bidirectional-rule violation.
    """
    # Fast path: printable ASCII (with SPACE) maps to itself and passes every check.
    if text.isascii() and all(" " <= ch <= "~" for ch in text):
        return text

    # Step 1: mapping (RFC 4013 §2.1).
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch
        for ch in text
        if not stringprep.in_table_b1(ch)
    )
    # Step 2: normalisation (RFC 4013 §2.2), against Unicode 3.2 as RFC 3454 requires.
    normalized = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not normalized:
        return normalized

    # Step 3 and the unassigned-code-point rule (RFC 4013 §2.3, §2.5).
    for ch in normalized:
        if any(table(ch) for table in _PROHIBITED):
            raise SaslprepError(f"prohibited character U+{ord(ch):04X}")
        if not allow_unassigned and stringprep.in_table_a1(ch):
            raise SaslprepError(f"unassigned code point U+{ord(ch):04X}")

    # Step 4: bidirectional characters (RFC 4013 §2.4, RFC 3454 §6). A string with any RandALCat
    # character must contain no LCat character, and must start and end with a RandALCat one.
    if any(stringprep.in_table_d1(ch) for ch in normalized):
        if any(stringprep.in_table_d2(ch) for ch in normalized):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(normalized[0]) and stringprep.in_table_d1(normalized[-1])):
            raise SaslprepError("right-to-left text must start and end with a right-to-left char")
    return normalized
