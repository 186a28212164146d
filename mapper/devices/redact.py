"""Credentials written into addresses (userinfo, secret query parameters) never leave the mapper.

Device specs and configs carry addresses such as `tcp://user:S3cret@host:1883` or `https://h/write?token=abc`;
every log line, metric label, error text and REST answer that shows an address shows `redact(address)`.
"""

from __future__ import annotations

import re

MASK = "***"
SECRET_PARAMETERS = ("password", "passwd", "pwd", "token", "access_token", "secret", "apikey", "api_key", "key",
                     "auth", "authorization", "sig", "signature", "credential", "credentials")
# scheme://userinfo@ : everything between "//" and the last "@" before the host part
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")
# bare userinfo without a scheme: user:password@host
_BARE_USERINFO = re.compile(r"(?<![\w/@])(?P<user>[^\s:/@?#]+):(?P<password>[^\s/@?#]+)@(?=[\w\[])")
_QUERY = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&;#\s]+)=(?P<value>[^&;#\s]*)")


def _mask_query(match: re.Match[str]) -> str:
    name = match.group("name")
    if name.lower().replace("-", "_") in SECRET_PARAMETERS:
        return f"{match.group('sep')}{name}={MASK}"
    return match.group(0)


def redact(text: str) -> str:
    """`text` with every userinfo of a URL and every secret query parameter value replaced by ***."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _BARE_USERINFO.sub(lambda m: f"{MASK}@", text)
    return _QUERY.sub(_mask_query, text)
