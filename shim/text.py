"""Text from elsewhere made safe to show: the one function that strips terminal control from it.

An identity provider's device-code message or error_description, a value in a kubeconfig, an
exception's words: any of them can carry escape sequences that a terminal obeys (ANSI CSI cursor and
colour codes, OSC window titles and hyperlinks, DCS/APC strings), C0/C1 control characters, or Unicode
bidirectional overrides that make a line read differently than it is. kubetray shows such text on
kubectl's stderr, in the tray and in its log, so it passes through :func:`printable` where it enters
(the sources) and again where it leaves to a terminal (the shim's progress and error lines).

Standard library only and imports nothing, so the shim may use it; only its slow path does.
"""

_ESC = "\x1b"
_BEL = "\x07"
# 7-bit and 8-bit introducers of control *strings*, which run until ST (ESC \ or U+009C) or BEL.
_STRING_STARTS = frozenset("]P^_X")  # OSC, DCS, PM, APC, SOS after ESC
_C1_STRING_STARTS = frozenset("\x9d\x90\x9e\x9f\x98")
_C1_CSI = "\x9b"
_C1_ST = "\x9c"
# Bidirectional embeddings, overrides and isolates, and the invisible direction marks.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_LINE_BREAKS = frozenset("\n\r\t\v\f\u2028\u2029\x85")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` without escape sequences, control characters or bidi overrides.

    Tabs and line breaks become a space (``keep_newlines`` keeps ``\\n``, e.g. for a multi-line log
    record); lone surrogates become U+FFFD. Everything else, including non-Latin scripts, is kept.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == _ESC:
            i = _skip_escape(text, i + 1)
            continue
        if ch == _C1_CSI:
            i = _skip_csi(text, i + 1)
            continue
        if ch in _C1_STRING_STARTS:
            i = _skip_string(text, i + 1)
            continue
        i += 1
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch in _LINE_BREAKS:
            out.append(" ")
        elif ch < " " or "\x7f" <= ch <= "\x9f" or ch in _BIDI:
            continue
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


def _skip_escape(text: str, i: int) -> int:
    """Index after the escape sequence whose ESC was just before ``i``."""
    if i >= len(text):
        return i
    ch = text[i]
    if ch == "[":
        return _skip_csi(text, i + 1)
    if ch in _STRING_STARTS:
        return _skip_string(text, i + 1)
    # ESC, any intermediates (0x20-0x2F), then one final character (nF / Fp / Fe / Fs escapes).
    while i < len(text) and " " <= text[i] <= "/":
        i += 1
    return i + 1


def _skip_csi(text: str, i: int) -> int:
    """Past parameters (0x30-0x3F), intermediates (0x20-0x2F) and the final byte (0x40-0x7E)."""
    while i < len(text) and "0" <= text[i] <= "?":
        i += 1
    while i < len(text) and " " <= text[i] <= "/":
        i += 1
    if i < len(text) and "@" <= text[i] <= "~":
        i += 1
    return i


def _skip_string(text: str, i: int) -> int:
    """Past a control string's body and its terminator (BEL, ST, or the end of the text)."""
    while i < len(text):
        ch = text[i]
        if ch in (_BEL, _C1_ST):
            return i + 1
        if ch == _ESC:
            return i + 2 if i + 1 < len(text) and text[i + 1] == "\\" else i
        i += 1
    return i
