"""dbMethod.mysql: mapper-framework's table per property through PyMySQL, one connection per address, database
and user.

As mapper-framework: a table named `<namespace>/<device>/<property>` with columns `id` INT AUTO_INCREMENT
primary key, `ts` DATETIME (local time) and `field` TEXT (the value as text), created if missing; user from
`userName`, password from env `PASSWORD` (or `datapanel.mysql.password_file`). Unlike it, `ts` is the sample's
time with milliseconds (DATETIME(3) in tables we create), values are always bound parameters, the table name
is quoted with every backtick doubled, and a batch is one transaction (a retried batch inserts nothing twice).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import pymysql
from pymysql.err import DataError, IntegrityError, InternalError, NotSupportedError, ProgrammingError

from mapper.devices.model import Device, DeviceProperty, MysqlMethod
from mapper.devices.registry import BoundProperty
from mapper.devices.values import Value
from mapper.sinks.panel import PanelSink, Target, host_port, text_value
from mapper.sinks.queue import Permanent
from mapper.sinks.registry import SinkContext

PREFIX = "pushMethod.dbMethod.mysql.mysqlClientConfig"
DEFAULT_PORT = 3306
MAX_IDENTIFIER = 64  # characters in a MySQL/MariaDB table name
REFUSED = (DataError, IntegrityError, InternalError, NotSupportedError, ProgrammingError)


@dataclass(frozen=True)
class Row:
    """One value for one table."""

    table: str
    ts: datetime.datetime
    field: str


def table_name(namespace: str, device: str, prop: str) -> str:
    """mapper-framework's table name."""
    return f"{namespace}/{device}/{prop}"


def quoted(identifier: str) -> str:
    """An identifier quoted for MySQL: in backticks, each backtick doubled."""
    return "`" + identifier.replace("`", "``") + "`"


def create_statement(table: str) -> str:
    """mapper-framework's table, with milliseconds."""
    return (f"CREATE TABLE IF NOT EXISTS {quoted(table)} (id INT AUTO_INCREMENT PRIMARY KEY, "
            "ts DATETIME(3) NOT NULL, field TEXT)")


def insert_statement(table: str) -> str:
    """One row, values bound by the driver."""
    return f"INSERT INTO {quoted(table)} (ts, field) VALUES (%s, %s)"


def check_method(method: MysqlMethod, table: str) -> list[str]:
    """What is missing or malformed in a mysqlClientConfig, and a table name MySQL cannot hold."""
    problems = []
    try:
        host_port(method.addr, DEFAULT_PORT)
    except ValueError as exc:
        problems.append(f"{PREFIX}.addr: {exc}")
    for name, value in (("database", method.database), ("userName", method.user_name)):
        if not value:
            problems.append(f"{PREFIX}.{name} is empty")
    if len(table) > MAX_IDENTIFIER:
        problems.append(f"the table name {table!r} is {len(table)} characters long; MySQL allows {MAX_IDENTIFIER} "
                        "(shorten the namespace, device or property name)")
    if "\x00" in table or table.endswith(" "):
        problems.append(f"the table name {table!r} cannot be a MySQL identifier (NUL or trailing space)")
    return problems


class MysqlWriter:
    """One PyMySQL connection, reopened after a failure; tables are created once per connection."""

    def __init__(self, method: MysqlMethod, password: str | None, timeout: float) -> None:
        self._host, self._port = host_port(method.addr, DEFAULT_PORT)
        self._method = method
        self._password = password
        self._timeout = max(int(timeout), 1)
        self._connection: pymysql.connections.Connection[pymysql.cursors.Cursor] | None = None
        self._tables: set[str] = set()

    def _connect(self) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        if self._connection is None:
            self._connection = pymysql.connect(
                host=self._host, port=self._port, user=self._method.user_name, password=self._password or "",
                database=self._method.database, charset="utf8mb4", autocommit=False,
                connect_timeout=self._timeout, read_timeout=self._timeout, write_timeout=self._timeout)
            self._tables.clear()
        return self._connection

    def write(self, batch: Sequence[Row]) -> None:
        """Insert the batch in one transaction, creating missing tables first."""
        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                for table in dict.fromkeys(row.table for row in batch):
                    if table not in self._tables:
                        cursor.execute(create_statement(table))
                        self._tables.add(table)
                    cursor.executemany(insert_statement(table),
                                       [(row.ts, row.field) for row in batch if row.table == table])
            connection.commit()
        except REFUSED as exc:
            self._rollback()
            self._tables.clear()  # a table dropped behind our back is created again
            raise Permanent(f"MySQL refused the values: {exc.args[-1] if exc.args else exc}") from None
        except Exception:
            self._drop_connection()
            raise

    def _rollback(self) -> None:
        try:
            if self._connection is not None:
                self._connection.rollback()
        except pymysql.MySQLError:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release
                self._connection.close()
        self._connection = None

    def close(self) -> None:
        """Close the connection."""
        self._drop_connection()


class MysqlSink(PanelSink[Row]):
    """Every property whose first database is mysql."""

    name = "mysql"
    method = "mysql"

    def __init__(self, context: SinkContext) -> None:
        settings = context.config.datapanel
        super().__init__(settings.queue("mysql"), secrets=(settings.mysql_password,))
        self._password = settings.mysql_password
        self._timeout = settings.timeout
        self._methods: dict[tuple[str, int, str, str], MysqlMethod] = {}

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """A malformed address, a missing database or user, a table name MySQL cannot hold."""
        assert prop.mysql is not None
        return check_method(prop.mysql, table_name(device.namespace, device.name, prop.name))

    def target(self, device: Device, prop: DeviceProperty) -> Target:
        """One connection per address, database and user."""
        method = prop.mysql
        assert method is not None
        host, port = host_port(method.addr, DEFAULT_PORT)
        shown = f"[{host}]" if ":" in host else host
        key = (host, port, method.database, method.user_name)
        self._methods.setdefault(key, method)
        return Target(key, f"mysql://{shown}:{port}/{method.database}")

    def writer(self, target: Target) -> MysqlWriter:
        """A connection for the target."""
        return MysqlWriter(self._methods[target.key], self._password, self._timeout)  # type: ignore[index]

    def item(self, device: Device, bound: BoundProperty, prop: DeviceProperty, value: Value,
             timestamp: float) -> Row:
        """The row of one value: local sample time with milliseconds, the value as text."""
        ts = datetime.datetime.fromtimestamp(round(timestamp, 3))
        return Row(table_name(device.namespace, device.name, bound.name), ts, text_value(value))


def build(context: SinkContext) -> MysqlSink:
    """The MySQL sink of a mapper."""
    return MysqlSink(context)
