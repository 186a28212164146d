"""What the mapper refuses before doing any work, and how long an error text may grow.

EdgeCore refuses every twin report of a device when one twin name falls outside its charset
(dttype.UnmarshalDeviceTwinUpdate: `^[a-zA-Z0-9-_.,:/@#]{1,128}$`), so such a property is refused when the Device
arrives. A refusal lists the first problems and a count of the rest, within MAX_DETAIL_BYTES: a gRPC status message
over 16 KiB reaches a Python client as RESOURCE_EXHAUSTED instead of the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TWIN_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,128}$")
TWIN_NAME_RULE = "EdgeCore takes twin names of 1 to 128 of a-z A-Z 0-9 - _ . , : / @ #"
MAX_PROPERTIES = 1000  # per Device and per DeviceModel; the catalogue has a few dozen
MAX_METHODS = 100  # per Device
MAX_MESSAGE_BYTES = 1024 * 1024  # one DMI request to the mapper (a 1000-property Device is about 150 KiB)
MAX_DETAIL_BYTES = 4096  # one refusal: gRPC status message and log line
SHOWN_NAME = 40  # characters of a name quoted in an error text


def shown(name: str) -> str:
    """A name as an error text quotes it: in full when short, else its start and its length."""
    if len(name) <= SHOWN_NAME:
        return repr(name)
    return f"{name[:SHOWN_NAME]!r}"[:-1] + f"…' ({len(name)} characters)"


def twin_name_problem(name: str) -> str | None:
    """Why EdgeCore would refuse `name` as a twin name, or None."""
    if TWIN_NAME_PATTERN.match(name):
        return None
    return f"property {shown(name)}: {TWIN_NAME_RULE}"


def capped(text: str, limit: int = MAX_DETAIL_BYTES) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, saying how much was left out."""
    data = text.encode()
    if len(data) <= limit:
        return text
    note = f" … ({len(data)} bytes in all)"
    return data[: limit - len(note.encode())].decode(errors="ignore") + note


def join_problems(prefix: str, problems: Sequence[str], limit: int = MAX_DETAIL_BYTES) -> str:
    """`prefix: p1; p2; …` with as many whole problems as fit in `limit` bytes, then `; and N more problems`."""
    reserve = len("; and 99999999 more problems")
    shown_problems: list[str] = []
    size = len(prefix.encode()) + 2
    for problem in problems:
        size += len(problem.encode()) + 2
        if size > limit - reserve:
            break
        shown_problems.append(problem)
    if not shown_problems and problems:  # a single problem longer than the limit: cut it
        shown_problems = [capped(problems[0], limit - reserve - len(prefix.encode()) - 2)]
    left = len(problems) - len(shown_problems)
    text = f"{prefix}: " + "; ".join(shown_problems)
    return text + (f"; and {left} more problems" if left else "")
