"""Hypothesis strategies for untrusted text, shared by every boundary's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

#: Hostile text: anything Unicode has, plus a bias towards lone surrogates, controls (NUL
#: included), format characters (RTL overrides, zero-width joiners, BOM) and combining marks.
HOSTILE_TEXT = st.one_of(
    st.text(),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Zl", "Zp"]), max_size=20),
    st.sampled_from(
        ["\u202eevil\u202c", "e\u0301\u0301\u0301", "\ud800", "a\udfffb", "\x00", "\ufeff", ""]
    ),
)


def as_utf8_wire(text: str) -> str:
    """What a UTF-8 wire format (a form body, a MIME part) can deliver of ``text``: a lone
    surrogate cannot be encoded, so a sender's library replaces it."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
