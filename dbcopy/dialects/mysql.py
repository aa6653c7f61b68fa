"""MySQL/MariaDB: immediate FK checks, strict mode, per-column charsets, AUTO_INCREMENT and id 0,
and LOAD DATA LOCAL INFILE fed straight from PostgreSQL's COPY."""

import os
import re
import socket
import tempfile
import threading
import time
from contextlib import contextmanager, suppress

from django.conf import settings
from django.db import DatabaseError

from ..exceptions import Interrupted, SourceFault
from ..storage import INTEGER_TYPES, column_type_field
from . import lines
from .base import Dialect, ForeignKeyReferrer, StreamPlan, error_chain, key_range_sql, translated_column_sql
from .postgresql import PostgreSQLDialect

_SESSION_MODES = "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_TRANS_TABLES', 'NO_AUTO_VALUE_ON_ZERO')"

# How PostgreSQL spells each column type in the text MySQL's LOAD DATA reads, by internal type.
# Types missing here (custom db types, arrays, floats' NaN…) take the value-by-value path.
_FROM_POSTGRESQL = {
    **dict.fromkeys(
        ["AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
         "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField", "CharField", "TextField",
         "SlugField", "EmailField", "URLField", "FilePathField", "FileField", "ImageField", "DecimalField",
         "DateField", "TimeField"],
        "{}",
    ),
    "BooleanField": "({})::int",
    "UUIDField": "replace(({})::text, '-', '')",  # MySQL keeps UUIDs as char(32) hex
    "JSONField": "({})::text",
    "GenericIPAddressField": "host({})",
    "DurationField": "(extract(epoch from {}) * 1000000)::bigint",  # MySQL keeps microseconds
    "BinaryField": "encode({}, 'hex')",
}
# COPY writes \f and \v for form feed and vertical tab; LOAD DATA would read them as 'f' and 'v'.
_COPY_ONLY_ESCAPES = re.compile(rb"\\\\|\\f|\\v")
_RAW_CONTROL = {b"\\f": b"\x0c", b"\\v": b"\x0b"}
# One row per column of every FK on a table of this database, from tables of any database on the
# server (InnoDB allows FKs across databases); the tables' names fill the IN list.
_REFERRERS_SQL = """
SELECT k.CONSTRAINT_NAME, k.TABLE_SCHEMA, k.TABLE_SCHEMA = DATABASE(), k.TABLE_NAME, k.COLUMN_NAME,
       k.REFERENCED_TABLE_NAME, r.DELETE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME
 AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.REFERENCED_TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IN ({})
ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""


# The FK constraints of a table of this database, a row per column in key order.
_TABLE_FOREIGN_KEYS_SQL = """
SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION
"""


# Lock wait timeout, deadlock, server gone away / lost, connection killed (MariaDB), shutdown,
# "lost connection" variants, and a disconnect for inactivity (MySQL 8).
_TRANSIENT_CODES = {1205, 1213, 2006, 2013, 1927, 1053, 2055, 4031}


# A packet over max_allowed_packet, refused by the server or by the client library. A server may
# instead just drop the connection (gone away, lost), which counts when the statement was big:
# 1 MiB is the smallest max_allowed_packet MySQL ever shipped with.
_PACKET_TOO_LARGE = {1153, 2020}
_CONNECTION_DROPPED = {2006, 2013}
_BIG_STATEMENT_BYTES = 1024 * 1024

# While LOAD DATA runs, the main thread looks up every _POLL_SECONDS: Python runs signal handlers
# then, and progress is reported (which raises Interrupted after a signal) if rows moved, or after a
# heartbeat if none did, so a stalled source does not keep a signal waiting.
_POLL_SECONDS = 0.1
_HEARTBEAT_SECONDS = 1.0
# And every _WATCH_SECONDS it asks the server whether the loading connection still exists. The
# client of a KILLed LOAD DATA does not find out by itself: the server stops reading and closes with
# a full receive window, and the client's send() waits in TCP's persist state until the server's
# orphaned socket expires (107 s measured here: tcp_fin_timeout 60 s plus probe backoff).
_WATCH_SECONDS = 1.0
# How long an aborted load may take to end by itself before its connection is killed, and again after.
_ABORT_GRACE_SECONDS = 3.0


# Canonical text of a non-NULL value by kind (digest.py). No '%' in them: the SQL runs with parameters.
_CANONICAL = {
    "int": "{}",  # CONCAT spells a number in decimal itself
    "bool": "{}",
    "text": "{}",
    "inet": "{}",
    "uuid": "LOWER(REPLACE(CAST({} AS CHAR), '-', ''))",  # char(32), or MariaDB's own uuid type
    "date": "CAST({} AS CHAR)",
    # TO_SECONDS counts from year 0 (62167219200 s before the epoch); cheaper than TIMESTAMPDIFF.
    "datetime": "(TO_SECONDS({0}) * 1000000 + MICROSECOND({0}) - 62167219200000000)",
    # Not TIME_TO_SEC: MariaDB keeps its fraction, MySQL drops it.
    "time": "(HOUR({0}) * 3600 + MINUTE({0}) * 60 + SECOND({0})) * 1000000 + MICROSECOND({0})",
    "duration": "{}",  # a bigint of microseconds
    "binary": "LOWER(HEX({}))",
}
_OWN_TEXT = {
    "float": "CAST({} AS CHAR)",
    "json": "{}",
    "other": "CAST({} AS CHAR)",
}


class MySQLDialect(Dialect):
    # InnoDB checks FKs row by row and cannot defer them; it can switch them off for the session.
    can_defer_constraints = True
    connect_timeout_option = "connect_timeout"
    default_port = 3306
    # Key ranges of one table would load one after another: LOAD DATA holds the table's AUTO-INC lock to
    # its end (innodb_autoinc_lock_mode 1, the default). Whole, an empty table takes MariaDB's bulk insert
    # (_has_bulk_insert). At 1.98 M rows, MariaDB → MariaDB took 12.0 s in ranges, 8.8 s whole.
    splits_streamed_tables = False

    def server_identity(self):
        # MySQL names itself with server_uuid; MariaDB has none, but server_uid (a hash of a MAC
        # address and the port). SHOW lists the ones this server has. Hostname, port and datadir are
        # the server's own settings, the same whichever way a client reached it.
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('server_uuid', 'server_uid', 'hostname', 'port', 'datadir')"
            )
            variables = tuple(sorted(tuple(row) for row in cursor.fetchall()))
            cursor.execute("SELECT DATABASE()")
            return (*variables, cursor.fetchone()[0])

    def prepare_session(self):
        # Strict mode turns silent truncation into errors; NO_AUTO_VALUE_ON_ZERO stores an explicit
        # id 0 as 0 instead of a fresh AUTO_INCREMENT value.
        self.execute([_SESSION_MODES])
        # Django reads sql_mode once, through a separate connection, so it would still refuse id 0:
        # tell it what this session's mode is.
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            modes = set(cursor.fetchone()[0].split(","))
        self.connection.__dict__["sql_mode"] = modes
        self.connection.features.__dict__["allows_auto_pk_0"] = "NO_AUTO_VALUE_ON_ZERO" in modes

    def refused_for_size(self, exc, statement_bytes):
        codes = {error.args[0] for error in error_chain(exc) if error.args and isinstance(error.args[0], int)}
        return bool(codes & _PACKET_TOO_LARGE) or (
            bool(codes & _CONNECTION_DROPPED) and statement_bytes >= _BIG_STATEMENT_BYTES
        )

    def column_charset(self, table, column):
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s",
                [table, column],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def sync_lock(self):
        return NamedLock(self.connection)

    def transient_driver_error(self, error):
        if isinstance(error, LoadDataLost):
            return True
        args = getattr(error, "args", ())
        return bool(args) and args[0] in _TRANSIENT_CODES

    snapshot_scope = "connection"

    def begin_read_snapshot(self):
        # Django sets READ COMMITTED for its sessions, where a snapshot lasts one statement only.
        self.execute([
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        ])

    def can_hold_commits(self):
        # MariaDB 10.4.1+ has BACKUP STAGE, which needs RELOAD: ask once per connection (a no-op pair).
        cached = self.connection.__dict__.get("_dbcopy_can_hold_commits")
        if cached is None:
            cached = self.connection.mysql_is_mariadb and self.connection.mysql_version >= (10, 4, 1)
            if cached:
                try:
                    self.execute(["BACKUP STAGE START", "BACKUP STAGE END"])
                except DatabaseError:
                    cached = False
            self.connection.__dict__["_dbcopy_can_hold_commits"] = cached
        return cached

    @contextmanager
    def commits_held(self):
        """Block commits server-wide (BACKUP STAGE BLOCK_COMMIT, as a backup tool does), on a connection of
        its own, for the moment the workers' snapshots take to begin; reads go on meanwhile."""
        with self.connection.wrap_database_errors:
            holder = self.connection.get_new_connection(self.connection.get_connection_params())
        try:
            cursor = holder.cursor()
            with self.connection.wrap_database_errors:
                cursor.execute("BACKUP STAGE START")
                cursor.execute("BACKUP STAGE BLOCK_COMMIT")
            yield
            with self.connection.wrap_database_errors:
                cursor.execute("BACKUP STAGE END")
        finally:
            holder.close()  # ends the stage too, if it was not ended

    def foreign_key_referrers(self, tables):
        tables = sorted(tables)
        if not tables:
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(_REFERRERS_SQL.format(", ".join(["%s"] * len(tables))), tables)
            rows = cursor.fetchall()
        # A composite key comes as one row per column, in order: gather them per constraint.
        columns, details = {}, {}
        for name, schema, local, table, column, referenced, rule in rows:
            key = (schema, table, name)
            columns.setdefault(key, []).append(column)
            details[key] = (referenced, rule, None if local else schema)
        return [
            ForeignKeyReferrer(name, table, tuple(key_columns), *details[(schema, table, name)])
            for (schema, table, name), key_columns in columns.items()
        ]

    @contextmanager
    def constraints_deferred(self, tables):
        # MySQL does not re-validate rows when checks come back on, so verify the tables afterwards.
        with self.connection.constraint_checks_disabled():
            yield
        self.check_constraints(tables)

    # --- digests --------------------------------------------------------------------------------

    def canonical_sql(self, kind, column, field, same_vendor=False, mixed_collations=True):
        if kind == "decimal":
            return f"CAST({column} AS DECIMAL(65, {int(field.decimal_places)}))"
        if kind in ("text", "json") and mixed_collations:
            # Columns of two collations cannot meet in one CONCAT ("illegal mix"): give them one.
            return f"(CONVERT({column} USING utf8mb4) COLLATE utf8mb4_bin)"
        template = _CANONICAL.get(kind) or (_OWN_TEXT.get(kind) if same_vendor else None)
        return template and template.format(column)

    def mixed_collations(self, table):
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(DISTINCT COLLATION_NAME) FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLLATION_NAME IS NOT NULL",
                [table],
            )
            return cursor.fetchone()[0] > 1

    def concat_sql(self, parts):
        return f"CONCAT({', '.join(parts)})"

    def text_length_sql(self, expression):
        return f"CHAR_LENGTH({expression})"

    def hash60_sql(self, text):
        return f"CAST(CONV(SUBSTRING(MD5({text}), 1, 15), 16, 10) AS UNSIGNED)"

    def bucket_sql(self, key, width):
        return f"({key} DIV {int(width)})"

    # --- PostgreSQL → MySQL without Python per row ---------------------------------------------

    def export_expression(self, source, field, deferred, translations):
        """Return the PostgreSQL expression that prints the column as LOAD DATA reads it, or None."""
        if field in deferred:
            return "NULL"
        internal_type = column_type_field(field).get_internal_type()
        column = source.quote(field.column)
        if field in translations:
            column = translated_column_sql(column, translations[field])
            if column is None:
                return None
        if internal_type == "DateTimeField":
            if not settings.USE_TZ:
                return column
            zone = self.connection.timezone_name.replace("'", "''")
            return f"to_char({column} AT TIME ZONE '{zone}', 'YYYY-MM-DD HH24:MI:SS.US')"
        template = _FROM_POSTGRESQL.get(internal_type)
        return template and template.format(column)

    def update_rows(self, table, fields, pk_fields, rows):
        """Update rows by an integer primary key, a batch per statement: the rows as a derived table
        joined on the key (mysqlclient's executemany sends UPDATEs one at a time, a round trip each).

        Other keys take the statement per row: a text key compared with a derived table's column
        could meet another collation.
        """
        if len(pk_fields) != 1 or len(rows) < 2 or not _is_integer_column(pk_fields[0]):
            return super().update_rows(table, fields, pk_fields, rows)
        width = len(fields) + 1
        names = [self.quote(f"v{i}") for i in range(width)]
        assignments = ", ".join(f"t.{self.quote(f.column)} = r.{name}" for f, name in zip(fields, names))
        with self.connection.cursor() as cursor:
            for batch in self.insert_batches([*fields, *pk_fields], rows):
                first = "SELECT " + ", ".join(f"%s AS {name}" for name in names)
                derived = first + (" UNION ALL SELECT " + ", ".join(["%s"] * width)) * (len(batch) - 1)
                cursor.execute(
                    f"UPDATE {self.quote(table)} AS t JOIN ({derived}) AS r "
                    f"ON t.{self.quote(pk_fields[0].column)} = r.{names[-1]} SET {assignments}",
                    [value for row in batch for value in row],
                )

    def columns_query(self, tables):
        return (
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            f"AND TABLE_NAME IN ({', '.join(['%s'] * len(tables))}) ORDER BY TABLE_NAME, ORDINAL_POSITION",
            list(tables),
        )

    def load_data_sql(self, step, path):
        targets, assignments = [], []
        for index, field in enumerate(step.fields):
            column = self.quote(field.column)
            if column_type_field(field).get_internal_type() == "BinaryField":
                targets.append(f"@v{index}")
                assignments.append(f"{column} = UNHEX(@v{index})")
            else:
                targets.append(column)
        sql = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {self.quote(step.table)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"({', '.join(targets)})"
        )
        return sql + (f" SET {', '.join(assignments)}" if assignments else "")

    def wire_kinds(self, step):
        """Return {field: the wire kind LOAD DATA reads for it} (lines.py; binary goes through UNHEX)."""
        return {field: lines.wire_kinds(field, duration="microseconds", binary="hex") for field in step.fields}

    def stream_plan(self, step, source):
        if isinstance(source, PostgreSQLDialect):
            deferred = set(step.deferred_fields)
            for field in step.fields:
                if self.export_expression(source, field, deferred, {}) is None:
                    type_name = column_type_field(field).get_internal_type()
                    return StreamPlan(False, f"{field.name} ({type_name}) has no exact spelling from postgresql")
            how = "COPY TO STDOUT"
        else:
            sql = lines.line_select_sql(source, self, step, self.wire_kinds(step))
            if not sql:
                return StreamPlan(False, sql.reason)
            how = f"{source.connection.display_name} SELECT spelling lines"
        return StreamPlan(
            True, f"{how} → LOAD DATA LOCAL INFILE through a FIFO (where the server allows it); "
                  "FK checks off, one anti-join per foreign key before the commit; the table loads whole, "
                  "never in key ranges (LOAD DATA holds its AUTO-INC lock)",
        )

    def checks_references_after_loading(self, step):
        return True  # LOAD DATA runs with foreign_key_checks off; _verify_references() checks once

    def stream_table(self, step, source, on_rows, translations=None, parents_loaded=None):
        """Pipe the source's rows into `LOAD DATA LOCAL INFILE` through a FIFO, in one transaction.

        From PostgreSQL its `COPY (SELECT …) TO STDOUT` feeds the FIFO; from MariaDB/MySQL and SQLite
        the source's SELECT spells each row as one line (lines.py). LOCAL turns data errors into
        warnings, so any warning rolls the table back and the caller copies it value by value
        instead, which names the row the server refuses. The load runs on a thread of its own while
        this one reports progress (where interrupts are raised) and watches both connections, so a
        fault or a signal ends the load in seconds, uncommitted.
        """
        if isinstance(source, PostgreSQLDialect):
            producer = self._copy_out_producer(step, source, translations) if source.has_copy else None
        else:
            sql = lines.line_select_sql(source, self, step, self.wire_kinds(step), translations)
            producer = sql and _FeedProducer(lines.LineFeed(source, sql))
        if not producer:
            return None
        loader = self._loading_connection()
        if loader is None:
            return None
        with tempfile.TemporaryDirectory(prefix="dbcopy-") as folder:
            producer.fifo = os.path.join(folder, "rows.tsv")
            os.mkfifo(producer.fifo, 0o600)
            stream = _Stream(self, step, loader, producer, kill=self._kill, parents_loaded=parents_loaded)
            interrupted = False
            try:
                return self._run_stream(stream, source, on_rows)
            except Interrupted:
                interrupted = True
                raise
            finally:
                stream.close()
                producer.leave_source(source, drain=not interrupted)

    def _copy_out_producer(self, step, source, translations):
        """Return a producer of the PostgreSQL source's COPY output, or None if a column has no spelling."""
        deferred = set(step.deferred_fields)
        expressions = [self.export_expression(source, field, deferred, translations or {}) for field in step.fields]
        if None in expressions:
            return None
        where = key_range_sql(source.quote, step)
        selected = f"SELECT {', '.join(expressions)} FROM {source.quote(step.table)}" + (f" WHERE {where}" if where else "")
        source.connection.ensure_connection()
        # The raw connection: Django's wrapper is bound to this thread, and another one reads.
        return _Producer(source.connection.connection, f"COPY ({selected}) TO STDOUT")

    def _run_stream(self, stream, source, on_rows):
        """Start the stream, wait for it, and commit the load only if every side is still sound."""
        stream.start()
        try:
            rows = self._supervise(stream, on_rows)
        except BaseException:  # an interrupt, a second Ctrl-C, or the destination connection died
            stream.abort()
            raise
        failure = stream.producer.source_failure
        if failure is not None:  # checked first: a cut stream also makes the load fail or come up short
            raise SourceFault(source.alias, failure) from failure
        if stream.loading.failure is not None:
            with self.connection.wrap_database_errors:
                raise stream.loading.failure
        if rows is None:
            raise LoadDataLost(f"the LOAD DATA connection of {stream.step.label} disappeared from the server")
        # Commit only while the destination's own connection lives: the run's lock and session are
        # there, and if it died the runner retries the table on a new one.
        self._serves(stream.loader_id)
        stream.loader.commit()
        return rows

    def _supervise(self, stream, on_rows):
        """Wait for the load; report progress (which raises Interrupted after a signal) and watch it.

        Return the rows loaded, or None if the loading connection vanished (a KILL lands on the
        client only when it next touches the socket, which a stalled source may put off for long).
        """
        reported, last_report = 0, time.monotonic()
        last_watch = last_report
        while stream.loading.is_alive():
            stream.loading.join(_POLL_SECONDS)  # back in Python: signal handlers run now
            now = time.monotonic()
            rows = stream.producer.rows
            if rows != reported or now - last_report >= _HEARTBEAT_SECONDS:
                on_rows(rows)
                reported, last_report = rows, now
            if now - last_watch >= _WATCH_SECONDS and stream.loading.is_alive():
                last_watch = now
                if not self._serves(stream.loader_id):
                    stream.abort(server_gone=True)
                    return None
        if stream.loading.failure is not None:
            stream.producer.stop()  # nobody reads the rest; the source may be waiting to send it
        stream.wait()
        rows = stream.loading.rows
        if rows is not None and rows != reported:
            on_rows(rows)
        return rows

    def _serves(self, thread_id):
        """Return whether the server still serves this connection (raises if our own connection is gone)."""
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT COMMAND FROM information_schema.PROCESSLIST WHERE ID = %s", [thread_id])
            row = cursor.fetchone()
        return row is not None and row[0] != "Killed"  # a killed one stays listed while it rolls back

    def _kill(self, thread_id):
        """Kill a connection of ours from this dialect's connection, if that still works."""
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"KILL CONNECTION {int(thread_id)}")
        except DatabaseError:
            pass  # already gone, or our own connection is: the load ends with its socket either way

    def _verify_references(self, cursor, step):
        """Refuse the load if a row points at a missing row (what foreign_key_checks would have said).

        Every FK of the table in the catalog, not only the model's: the checks were off for all of them.
        Only the step's key range is checked (the other ranges of the table check their own rows).
        """
        cursor.execute(_TABLE_FOREIGN_KEYS_SQL, [step.table])
        keys = {}
        for name, column, schema, referenced, referenced_column in cursor.fetchall():
            keys.setdefault((name, schema, referenced), []).append((column, referenced_column))
        if not keys:
            return
        where = key_range_sql(lambda name: "child." + self.quote(name), step)
        # Scan the rows through the table itself: on pages this transaction just wrote, InnoDB confirms
        # each entry of a secondary index (the FK's own, which the optimizer picks) in the table, one
        # random lookup per row (20 s instead of 1 s for 550,000 rows).
        cursor.execute(
            "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
            "AND INDEX_NAME = 'PRIMARY' LIMIT 1",
            [step.table],
        )
        hint = " FORCE INDEX (PRIMARY)" if cursor.fetchone() else ""
        for (name, schema, referenced), pairs in keys.items():
            cursor.execute(_orphan_sql(self.quote, step.table, schema, referenced, pairs, where, hint))
            row = cursor.fetchone()
            if row is not None:
                columns = ", ".join(column for column, _ in pairs)
                raise LoadDataWarning(
                    f"{step.label}: a row refers through {name} ({columns} = {', '.join(map(str, row))}) "
                    f"to a row of {referenced} that does not exist"
                )

    def _loading_connection(self):
        """Open a second connection allowed to send local files, or None if the server forbids it."""
        params = dict(self.connection.get_connection_params(), local_infile=True)
        with self.connection.wrap_database_errors:
            loader = self.connection.Database.connect(**params)
        cursor = loader.cursor()
        cursor.execute("SELECT @@GLOBAL.local_infile")
        if not cursor.fetchone()[0]:
            loader.close()
            return None
        cursor.execute(_SESSION_MODES)
        isolation = getattr(self.connection, "isolation_level", None)  # Django's, from OPTIONS (validated)
        if isolation:
            cursor.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {isolation.upper()}")
        # InnoDB checks each row's FKs one random index lookup at a time, which dominates a large
        # load; the rows are checked all at once in _verify_references() before the commit instead.
        cursor.execute("SET SESSION foreign_key_checks = 0")
        loader.autocommit(False)
        loader.bulk_insert = self._has_bulk_insert(cursor)
        return loader

    def _has_bulk_insert(self, cursor):
        """Return whether a load into an empty table may take MariaDB's bulk insert (MDEV-24621).

        With unique_checks and foreign_key_checks off, MariaDB writes a transaction's rows into an empty
        InnoDB table with one undo record for the table and builds each index by sorting, instead of
        inserting row by row; a duplicate key still fails the statement (or is a warning, which rolls it
        back). Not on MySQL, whose InnoDB may then skip the unique checks of secondary indexes, nor
        where InnoDB's change buffer could take inserts into a table that is not empty (it skips them
        there as well), nor before the releases that fixed its memory use (MDEV-34703; the versions
        mariadb-import enables it from).
        """
        connection = self.connection
        if not connection.mysql_is_mariadb or not _fixed_bulk_insert(connection.mysql_version):
            return False
        cursor.execute(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES "
            "WHERE VARIABLE_NAME = 'INNODB_CHANGE_BUFFERING'"
        )
        row = cursor.fetchone()
        return row is None or row[0].lower() == "none"  # MariaDB 11 has no change buffer

    def _load(self, loader, step, fifo, stopped=lambda: False, parents_loaded=None):
        """Run LOAD DATA and the checks a commit needs; roll back on any error. Return the rows loaded.

        The FK check waits for parents_loaded(): the tables referred to may still be loading on other
        workers. It is the transaction's first read of them, so it sees their commits (InnoDB takes a
        REPEATABLE READ snapshot at the first read; under READ COMMITTED each statement sees the latest).
        """
        cursor = loader.cursor()
        try:
            # Key ranges of one table load at once: the bulk insert would lock the table for the first one.
            if loader.bulk_insert and step.key_range is None:
                cursor.execute("SET SESSION unique_checks = 0")
            cursor.execute(self.load_data_sql(step, fifo))
            rows = cursor.rowcount
            if stopped():
                return rows  # the stream was cut short: the caller rolls back, no need to check
            if loader.warning_count():
                cursor.execute("SHOW WARNINGS LIMIT 1")
                level, code, message = cursor.fetchone()
                raise LoadDataWarning(f"LOAD DATA reported {level.lower()} {code}: {message}")
            if parents_loaded is not None:
                parents_loaded(stopped)
                if stopped():
                    return rows
            self._verify_references(cursor, step)
        except Exception:
            loader.rollback()
            raise
        return rows


def _fixed_bulk_insert(version):
    """Return whether this MariaDB release has MDEV-34703 fixed (10.11.11, 11.4.5, 11.7.2 and later)."""
    return version >= (11, 7, 2) or (11, 4, 5) <= version < (11, 5) or (10, 11, 11) <= version < (10, 12)


def _orphan_sql(quote, table, schema, referenced, pairs, where, hint=""):
    """Return a query for the key of one row whose FK (MATCH SIMPLE: no NULL in it) finds no row.

    hint: an index hint for the child table."""
    child = ", ".join(f"child.{quote(column)}" for column, _ in pairs)
    present = " AND ".join(f"child.{quote(column)} IS NOT NULL" for column, _ in pairs)
    joined = " AND ".join(f"parent.{quote(target)} = child.{quote(column)}" for column, target in pairs)
    return (
        f"SELECT {child} FROM {quote(table)} AS child{hint} WHERE {present}" + (f" AND {where}" if where else "")
        + f" AND NOT EXISTS (SELECT 1 FROM {quote(schema)}.{quote(referenced)} AS parent WHERE {joined}) LIMIT 1"
    )


class NamedLock:
    """MySQL's GET_LOCK: server-wide names, so the database's name is part of it; dies with the session."""

    def __init__(self, connection):
        self.connection = connection
        self.name = f"dbcopy-sync:{connection.settings_dict['NAME']}"[:64]

    def acquire(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", [self.name])
            return cursor.fetchone()[0] == 1

    def release(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT RELEASE_LOCK(%s)", [self.name])


class LoadDataWarning(DatabaseError):
    """LOAD DATA LOCAL accepted a row with a warning (truncated, converted, or skipped as duplicate)."""


class LoadDataLost(DatabaseError):
    """The LOAD DATA connection vanished from the server (killed) without its client noticing yet."""


class _Stopped(Exception):
    """Raised into copy_expert() to end a stream the loading side no longer wants."""


class _Stream:
    """The two threads of one table's stream and the loading connection they share with the caller."""

    def __init__(self, dialect, step, loader, producer, kill, parents_loaded=None):
        self.step, self.loader, self.producer, self.kill = step, loader, producer, kill
        self.loader_id = loader.thread_id()  # asked now: mysqlclient refuses while LOAD DATA runs
        # Our own handle on the loading connection's socket, valid whatever the driver does with its
        # descriptor, to sever a connection the server has dropped (see _WATCH_SECONDS).
        self.loader_socket = socket.socket(fileno=os.dup(loader.fileno()))
        self.stopped = False
        self.loading = _Loading(dialect, loader, step, producer.fifo, lambda: self.stopped, parents_loaded)

    def start(self):
        self.producer.start()
        self.loading.start()

    def abort(self, server_gone=False):
        """Cut the stream and wait (bounded) for both threads; kill the loading connection if need be.

        The producer stops and the source's query is cancelled, so LOAD DATA reads the end of its
        file; a load that does not end anyway (a server that stopped reading) is killed, which
        rolls it back on the server, and its socket shut down, which wakes the client.
        """
        self.stopped = True
        self.producer.stop()
        if server_gone:
            self.sever()
        if not self.wait():
            self.kill(self.loader_id)
            self.sever()
            self.wait()

    def sever(self):
        """Shut the loading connection's socket down: a client blocked in send() or recv() returns."""
        with suppress(OSError):
            self.loader_socket.shutdown(socket.SHUT_RDWR)

    def wait(self, seconds=_ABORT_GRACE_SECONDS):
        """Join both threads for up to `seconds`, unblocking either one stuck opening the FIFO."""
        deadline = time.monotonic() + seconds
        while self.loading.is_alive() or self.producer.is_alive():
            if time.monotonic() >= deadline:
                return False
            self.producer.unblock()
            for thread in (self.loading, self.producer):
                thread.join(_POLL_SECONDS / 2)
        return True

    def close(self):
        """Leave nothing behind: roll back what was not committed and close the loading connection."""
        if not self.stopped and (self.loading.is_alive() or self.producer.is_alive()):
            self.abort()
        if self.loading.is_alive():
            # Still in C after its socket was shut down: the connection stays with its thread, its
            # transaction uncommitted; both die with the process (daemon threads).
            return
        with suppress(Exception):  # the connection may have died with the fault being reported
            self.loader.rollback()  # a no-op after the commit
        self.loader.close()
        self.loader_socket.close()


class _Loading(threading.Thread):
    """Run LOAD DATA on the loading connection, off the main thread (which handles signals)."""

    def __init__(self, dialect, loader, step, fifo, stopped, parents_loaded=None):
        super().__init__(name=f"dbcopy-load-data-{step.table}", daemon=True)
        self.dialect, self.loader, self.step, self.fifo, self.stopped = dialect, loader, step, fifo, stopped
        self.parents_loaded = parents_loaded
        self.rows = self.failure = None

    def run(self):
        try:
            self.rows = self.dialect._load(self.loader, self.step, self.fifo, self.stopped, self.parents_loaded)
        except Exception as exc:  # noqa: BLE001 - re-raised by the main thread
            self.failure = exc


class _Producer(threading.Thread):
    """Write the source's COPY output into the FIFO, turning \\f and \\v back into their characters."""

    def __init__(self, raw_source, copy_out, fifo=None):
        super().__init__(name="dbcopy-copy-out", daemon=True)
        self.raw_source, self.copy_out, self.fifo = raw_source, copy_out, fifo
        self.failure = None
        self.rows = 0
        self.stopping = self.cancelled = self.cancel_sent = False
        self.started_copy = self.finished = False

    def run(self):
        try:
            # Not `with`: a failed close (no reader left) is told apart from a failed COPY.
            sink = open(self.fifo, "wb")  # noqa: SIM115 - waits for LOAD DATA's client to open the other end
        except OSError as exc:
            self.failure = exc
            return
        try:
            if not self.stopping:
                self.started_copy = True
                self.pump(sink)
                self.finished = True
        except Exception as exc:  # noqa: BLE001 - judged by the main thread
            self.failure = exc
        finally:
            try:
                sink.close()
            except OSError as exc:  # the last buffered rows found no reader: the load gave up
                self.failure = self.failure or exc

    def pump(self, sink):
        """Write every row into the sink."""
        with self.raw_source.cursor() as cursor:
            cursor.copy_expert(self.copy_out, _Rewriter(sink, self))

    def cancel(self):
        """Make the source stop sending (from another thread)."""
        self.raw_source.cancel()

    def leave_source(self, source, drain=True):
        """Leave the source connection usable after the stream: an aborted COPY leaves it unusable."""
        if self.cut_short:
            source.connection.close()

    @property
    def source_failure(self):
        """The source's own error, if reading it failed: not a write the FIFO refused because the
        load gave up first (OSError), nor a stream we stopped or cancelled ourselves."""
        if self.failure is None or self.cancelled:
            return None
        if any(isinstance(error, (OSError, _Stopped)) for error in error_chain(self.failure)):
            return None
        return self.failure

    @property
    def cut_short(self):
        """Whether a COPY began and did not finish: the source session is then unusable."""
        return self.started_copy and not self.finished

    def stop(self):
        """Stop at the next write; unblock() releases a producer that is not writing."""
        self.stopping = True
        self.unblock()

    def unblock(self):
        """Release a thread waiting for something other than the stream: a stopped COPY waiting for
        the source server (cancelled, once), or either end of the FIFO waiting in open() for the other."""
        if self.stopping and self.started_copy and not self.cancel_sent and self.is_alive():
            self.cancel_sent = True
            self.cancelled = self.failure is None  # else the source had failed by itself
            with suppress(Exception):  # a connection already closed has nothing to cancel
                self.cancel()
        # A live producer may wait for a reader; once it is gone, LOAD DATA's client may still wait
        # for a writer, and an empty file ends it.
        flags = os.O_RDONLY if self.is_alive() else os.O_WRONLY
        try:
            os.close(os.open(self.fifo, flags | os.O_NONBLOCK))
        except OSError:
            pass  # nobody waiting on the other end


class _FeedProducer(_Producer):
    """Write a MariaDB/MySQL or SQLite source's lines (lines.LineFeed) into the FIFO."""

    def __init__(self, feed, fifo=None):
        super().__init__(None, None, fifo)
        self.feed = feed
        self.blocks = None

    def pump(self, sink):
        self.blocks = self.feed.blocks()
        for block in self.blocks:
            if self.stopping:
                raise _Stopped
            sink.write(block)
            self.rows = self.feed.rows

    def cancel(self):
        self.feed.cancel()

    def leave_source(self, source, drain=True):
        """Read the rest of a result the load cut short, on this thread once the producer has ended
        (the connection and its snapshot stay usable); close the connection after an interrupt or
        if it is still busy."""
        if not self.feed.cut_short or self.blocks is None:
            return
        if self.is_alive() or not drain:
            self.feed.abandon()
        else:
            self.blocks.close()


class _Rewriter:
    """A file-like sink for copy_expert(): rewrite COPY-only escapes, count rows, pass bytes on."""

    def __init__(self, sink, producer):
        self.sink, self.producer = sink, producer

    def write(self, data):
        if self.producer.stopping:
            raise _Stopped
        data = bytes(data) if not isinstance(data, bytes) else data
        if b"\\f" in data or b"\\v" in data:
            # COPY sends whole rows per write, so an escape never straddles two writes.
            data = _COPY_ONLY_ESCAPES.sub(lambda m: _RAW_CONTROL.get(m.group(0), m.group(0)), data)
        self.sink.write(data)
        self.producer.rows += data.count(b"\n")
        return len(data)


def _is_integer_column(field):
    return column_type_field(field).get_internal_type() in INTEGER_TYPES
