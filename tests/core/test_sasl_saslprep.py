"""SASLprep (RFC 4013): the §3 examples, plus each step of the profile on its own."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esmtp_core import SaslprepError, saslprep
from esmtp_core._gs2 import Gs2SyntaxError, escape_saslname, parse_gs2_header, unescape_saslname


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I\u00adX", "IX"),  # 1: SOFT HYPHEN mapped to nothing
        ("user", "user"),  # 2: no transformation
        ("USER", "USER"),  # 3: case preserved, will not match #2
        ("\u00aa", "a"),  # 4: output is NFKC, input in ISO 8859-1
        ("\u2168", "IX"),  # 5: output is NFKC, will match #1
    ],
)
def test_rfc4013_section3_examples(text: str, expected: str) -> None:
    assert saslprep(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "\u0007",  # 6: prohibited character (ASCII control)
        "\u0627\u0031",  # 7: bidirectional check (RandALCat must also end the string)
    ],
)
def test_rfc4013_section3_errors(text: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(text)


def test_example_1_and_5_match() -> None:
    assert saslprep("I\u00adX") == saslprep("\u2168")


def test_non_ascii_space_maps_to_space() -> None:
    # U+00A0 NO-BREAK SPACE and U+3000 IDEOGRAPHIC SPACE are table C.1.2: mapped to SPACE.
    assert saslprep("a\u00a0b\u3000c") == "a b c"


def test_ascii_space_is_allowed() -> None:
    assert saslprep("pass word") == "pass word"


def test_zero_width_characters_are_removed() -> None:
    # U+200B ZERO WIDTH SPACE and U+FEFF are in table B.1.
    assert saslprep("a\u200bb\ufeffc") == "abc"


def test_nfkc_of_compatibility_characters() -> None:
    assert saslprep("\ufb01") == "fi"  # LATIN SMALL LIGATURE FI
    assert saslprep("e\u0301") == "\u00e9"  # composed


@pytest.mark.parametrize(
    "text",
    [
        "a\u0000b",  # C.2.1 ASCII control
        "a\u0080b",  # C.2.2 non-ASCII control
        "\ue000",  # C.3 private use
        "\ufdd0",  # C.4 non-character
        "\ufff9",  # C.6 inappropriate for plain text
        "\u2ff0",  # C.7 inappropriate for canonical representation
        "\u200e",  # C.8 change display properties (LEFT-TO-RIGHT MARK)
        "\U000e0001",  # C.9 tagging character
        "\u0627a\u0627",  # RandALCat mixed with LCat
        "a\u0627",  # RandALCat not at the start
    ],
)
def test_prohibited(text: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(text)


def test_right_to_left_string_is_fine() -> None:
    assert saslprep("\u0627\u0031\u0628") == "\u0627\u0031\u0628"


def test_unassigned_code_points_query_versus_stored() -> None:
    unassigned = "\u0221"  # unassigned in Unicode 3.2 (table A.1)
    assert saslprep(unassigned) == unassigned
    with pytest.raises(SaslprepError):
        saslprep(unassigned, allow_unassigned=False)


def test_empty_results_are_returned() -> None:
    assert saslprep("") == ""
    assert saslprep("\u00ad") == ""


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_saslprep_is_idempotent(text: str) -> None:
    try:
        prepared = saslprep(text)
    except SaslprepError:
        return
    assert saslprep(prepared) == prepared


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_is_unchanged(text: str) -> None:
    assert saslprep(text) == text


# --- the GS2 header and saslname encoding shared by SCRAM and OAUTHBEARER ---------------------


@given(st.text(alphabet=st.characters(blacklist_characters="\x00"), min_size=1))
def test_saslname_round_trip(name: str) -> None:
    escaped = escape_saslname(name)
    assert "," not in escaped
    assert unescape_saslname(escaped) == name


@pytest.mark.parametrize("text", ["", "a=b", "a=2c", "=", "a,b", "a\x00b", "=3"])
def test_bad_saslnames(text: str) -> None:
    with pytest.raises(Gs2SyntaxError):
        unescape_saslname(text)


def test_gs2_header_parts() -> None:
    header, rest = parse_gs2_header("p=tls-server-end-point,a=x=2Cy,n=u,r=abc")
    assert (header.flag, header.cb_name, header.authzid) == ("p", "tls-server-end-point", "x,y")
    assert header.raw == "p=tls-server-end-point,a=x=2Cy,"
    assert rest == "n=u,r=abc"
