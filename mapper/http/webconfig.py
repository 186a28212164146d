"""The Prometheus exporter-toolkit web config file: TLS on the HTTP port and basic-auth users with bcrypt hashes.

The format of node_exporter's `--web.config.file`, so the same file and the same ServiceMonitor settings work here.
Supported: `tls_server_config` (cert_file, key_file, client_ca_file, client_auth_type, min_version, max_version) and
`basic_auth_users`; the format's other keys are refused as unsupported rather than ignored. File paths are taken
relative to the web config file's folder, as exporter-toolkit does. The file is read at start (a change needs a
restart); the certificate and key are read again when their files change (cert-manager renewals).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mapper.sections.reader import unknown_keys

TLS_KEYS = frozenset({"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version", "max_version"})
UNSUPPORTED_TLS_KEYS = frozenset({"cert", "key", "client_ca", "client_allowed_sans", "cipher_suites",
                                  "prefer_server_cipher_suites", "curve_preferences"})
TOP_KEYS = frozenset({"tls_server_config", "basic_auth_users"})
UNSUPPORTED_TOP_KEYS = frozenset({"http_server_config", "rate_limit"})
VERSIONS = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1, "TLS12": ssl.TLSVersion.TLSv1_2,
            "TLS13": ssl.TLSVersion.TLSv1_3}
# Python's ssl verifies every client certificate it asks for, so only these three policies exist here.
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
BCRYPT_HASH = re.compile(r"^\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}$")
AUTH_CACHE_SIZE = 64


class WebConfigError(ValueError):
    """Every problem of a web config file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class TlsServerConfig:
    """`tls_server_config` with absolute paths."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: str = "NoClientCert"
    min_version: str = "TLS12"
    max_version: str = "TLS13"

    def context(self) -> ssl.SSLContext:
        """A server SSLContext (raises ssl.SSLError or OSError for unusable files)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = VERSIONS[self.min_version]
        context.maximum_version = VERSIONS[self.max_version]
        context.load_cert_chain(self.cert_file, self.key_file)
        context.verify_mode = CLIENT_AUTH[self.client_auth_type]
        if self.client_ca_file:
            context.load_verify_locations(cafile=self.client_ca_file)
        return context


@dataclass(frozen=True)
class WebConfig:
    """A loaded web config: TLS when configured, and the basic-auth users (name -> bcrypt hash)."""

    tls: TlsServerConfig | None = None
    users: Mapping[str, str] = field(default_factory=dict)


def load_web_config(path: Path) -> WebConfig:
    """Read and check a web config file; WebConfigError lists every problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise WebConfigError([f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"]) from exc
    except yaml.YAMLError as exc:
        raise WebConfigError([f"{path} is not valid YAML: {exc}"]) from exc
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise WebConfigError([f"{path}: must hold a mapping, got {type(raw).__name__}"])
    problems: list[str] = []
    _unknown(raw, TOP_KEYS, UNSUPPORTED_TOP_KEYS, "", problems)
    tls = _tls(raw.get("tls_server_config"), path.parent, problems)
    users = _users(raw.get("basic_auth_users"), problems)
    if problems:
        raise WebConfigError([f"{path}: {p}" for p in problems])
    return WebConfig(tls, users)


def _unknown(raw: Mapping[Any, Any], known: frozenset[str], unsupported: frozenset[str], prefix: str,
             problems: list[str]) -> None:
    for key, message in unknown_keys(raw, known | unsupported):
        problems.append(f"{prefix}{key}: {message}")
    problems.extend(f"{prefix}{key}: not supported by jetson-mapper" for key in raw if key in unsupported)


def _tls(raw: Any, folder: Path, problems: list[str]) -> TlsServerConfig | None:
    """`tls_server_config`; None when absent or empty (plain HTTP, as exporter-toolkit)."""
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        problems.append("tls_server_config: must be a mapping")
        return None
    _unknown(raw, TLS_KEYS, UNSUPPORTED_TLS_KEYS, "tls_server_config.", problems)
    before = len(problems)
    values = {key: raw.get(key) for key in TLS_KEYS}
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            problems.append(f"tls_server_config.{key}: must be a string, got {value!r}")
    problems.extend(f"tls_server_config: {key} is missing" for key in ("cert_file", "key_file") if not values[key])
    auth = values["client_auth_type"] or "NoClientCert"
    if auth not in CLIENT_AUTH:
        problems.append(f"tls_server_config.client_auth_type: {auth!r} is not supported (one of "
                        f"{', '.join(CLIENT_AUTH)}; Python verifies every client certificate it asks for)")
    elif (auth != "NoClientCert") != bool(values["client_ca_file"]):
        problems.append("tls_server_config.client_ca_file: needs client_auth_type VerifyClientCertIfGiven or "
                        "RequireAndVerifyClientCert, and they need it")
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        if (values[key] or default) not in VERSIONS:
            problems.append(f"tls_server_config.{key}: {values[key]!r} is not one of {', '.join(VERSIONS)}")
    if len(problems) > before:
        return None
    absolute = {key: str(folder / str(values[key])) for key in ("cert_file", "key_file", "client_ca_file")
                if values[key]}
    for key, file in absolute.items():
        if not os.path.isfile(file):
            problems.append(f"tls_server_config.{key}: {file} does not exist")
    if len(problems) > before:
        return None
    tls = TlsServerConfig(absolute["cert_file"], absolute["key_file"], absolute.get("client_ca_file"), auth,
                          values["min_version"] or "TLS12", values["max_version"] or "TLS13")
    try:
        tls.context()
    except (ssl.SSLError, OSError, ValueError) as exc:
        problems.append(f"tls_server_config: cannot use {tls.cert_file} and {tls.key_file}: {exc}")
        return None
    return tls


def _users(raw: Any, problems: list[str]) -> dict[str, str]:
    """`basic_auth_users`: every value a bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\\n')."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append("basic_auth_users: must be a mapping of user names to bcrypt hashes")
        return {}
    users: dict[str, str] = {}
    for name, hashed in raw.items():
        if not isinstance(hashed, str) or not BCRYPT_HASH.match(hashed):
            problems.append(f"basic_auth_users.{name}: not a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n')")
        elif not isinstance(name, str) or ":" in name or not name:
            problems.append(f"basic_auth_users: {name!r} cannot be a user name")
        else:
            users[name] = hashed
    return users


class TlsContext:
    """The server's SSLContext, built again when the certificate or key file changes."""

    def __init__(self, tls: TlsServerConfig) -> None:
        self._tls = tls
        self._lock = threading.Lock()
        self._stamp: tuple[float, float] | None = None
        self._context = tls.context()
        self._stamp = self._mtimes()

    def _mtimes(self) -> tuple[float, float] | None:
        try:
            return (os.stat(self._tls.cert_file).st_mtime, os.stat(self._tls.key_file).st_mtime)
        except OSError:
            return self._stamp  # keep serving the last good pair while a renewal swaps the files

    def wrap(self, connection: Any) -> ssl.SSLSocket:
        """The accepted connection after the TLS handshake (raises ssl.SSLError or OSError)."""
        with self._lock:
            stamp = self._mtimes()
            if stamp != self._stamp:
                try:
                    self._context = self._tls.context()
                    self._stamp = stamp
                except (ssl.SSLError, OSError, ValueError):
                    pass  # a half-written renewal: the old pair until both files are there
            context = self._context
        return context.wrap_socket(connection, server_side=True)


class BasicAuth:
    """`Authorization: Basic` against bcrypt hashes; each (user, hash, password) is checked once, then cached.

    An unknown user is checked against a hash of its own so that the answer takes as long as for a known one.
    """

    def __init__(self, users: Mapping[str, str]) -> None:
        import bcrypt  # only when basic_auth_users are configured

        self._bcrypt = bcrypt
        self._users = dict(users)
        self._dummy = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(rounds=10))
        self._lock = threading.Lock()  # bcrypt is CPU-bound: one check at a time
        self._cache: OrderedDict[bytes, bool] = OrderedDict()

    def allows(self, authorization: str) -> bool:
        """Whether the header names a user and the right password."""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        hashed = self._users.get(user)
        key = hashlib.sha256(b"\0".join([user.encode(), (hashed or "").encode(), password.encode()])).digest()
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                stored = hashed.encode() if hashed else self._dummy
                if stored.startswith(b"$2y$"):
                    stored = b"$2b$" + stored[4:]  # the same algorithm; htpasswd writes $2y$
                try:
                    matches = bool(self._bcrypt.checkpw(password.encode(), stored))
                except ValueError:  # bcrypt 5 refuses passwords over 72 bytes: no hash can match one
                    matches = False
                cached = matches and hashed is not None
                self._cache[key] = cached
                if len(self._cache) > AUTH_CACHE_SIZE:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
        return cached
