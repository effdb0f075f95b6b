"""Text from outside (file names, hand-edited JSON) made safe for line-based text exports.

A newline in a file name would otherwise end an EDL comment and start a forged event line (or a VTT
cue, an ffmetadata key, a CSV row). Every C0 and C1 control character, DEL and the Unicode line and
paragraph separators are replaced by a visible escape (`\\n`, `\\r`, `\\t`, `\\x00`, `\\u2028`), so
the text keeps its information and stays on one line.
"""

from __future__ import annotations

import re

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(match: re.Match) -> str:
    char = match.group()
    if char in NAMED_ESCAPES:
        return NAMED_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def one_line(text: str) -> str:
    """`text` with every control character escaped: printable, on one line."""
    return CONTROL_CHARACTERS.sub(escape_control, text)
