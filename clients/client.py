"""The Python client: a thin, typed layer over pyarrow.flight for flightdeck's contracts."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
import pyarrow.flight as flight

from . import load_put
from .errors import DETAIL_TRAILERS, LoadError, QueryError, converted, from_arrow
from .far_dates import first_far
from .live_mux import Multiplex
from .live_request import live_request
from .load import LoadResult, LoadSource, Source, open_source
from .tracker import Tracker, TrackFailure
from .view_sql import select_view

if TYPE_CHECKING:
    import pandas
    import polars

__all__ = ["DEFAULT_LOCATION", "Client", "LiveMessage", "LiveSubscription", "ViewInfo", "connect"]

DEFAULT_LOCATION = "grpc://127.0.0.1:8815"
_EVENTS = flight.FlightDescriptor.for_path("events", "pageview")
# An endpoint with this location (or none) means "ask the server you asked".
_REUSE = "arrow-flight-reuse-connection://"


def connect(uri: str = DEFAULT_LOCATION, token: str | None = None, **tracking: Any) -> Client:
    """A client of the flightdeck server at `uri`; with `token`, every call carries
    `authorization: Bearer <token>`. `tracking`: Client's `track_…` options."""
    return Client(uri, token=token, **tracking)


class ViewInfo(NamedTuple):
    """One `va_` view of the catalog; unpacks as `(name, schema, rows)`."""

    name: str
    schema: pa.Schema
    rows: int | None  # None: the server did not say (counting can be dear)


class LiveMessage(NamedTuple):
    """One message of a live subscription; unpacks as `(kind, table, cursor)`.

    kind: snapshot, snapshot_end, update (or upsert, with `messages=2`), remove,
    heartbeat, resync or error; a kind not listed here may come from a newer
    server: skip it. `table` holds rows for snapshot, update and upsert, and for
    remove the keys of rows to drop (other columns null), else None. Keep the
    newest `cursor` to resume from it after a disconnect.
    """

    kind: str
    table: pa.Table | None
    cursor: int
    detail: dict[str, Any]


class LiveSubscription:
    """An iterator of LiveMessage; `close()` (or leaving a `with` block) ends the call."""

    def __init__(
        self,
        writer: flight.FlightStreamWriter,
        reader,
        location: str = "",
        connection: flight.FlightClient | None = None,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._location = location
        self._connection = connection  # its own, if it has one: closed with it
        self.cursor: int | None = None
        self.lifetime: str | None = None  # resume with it and `cursor`

    def __iter__(self) -> Iterator[LiveMessage]:
        while True:
            try:
                with converted("query", self._location):  # the server refuses on first read
                    chunk = self._reader.read_chunk()
            except StopIteration:
                return
            meta = json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata else {}
            table = pa.Table.from_batches([chunk.data]) if chunk.data is not None else None
            self.cursor = meta.get("cursor", self.cursor)
            self.lifetime = meta.get("lifetime", self.lifetime)
            yield LiveMessage(meta.get("type", "update"), table, self.cursor, meta)
            if meta.get("type") == "error":
                return

    @property
    def schema(self) -> pa.Schema:
        """The columns of every message's rows (waits for the server's first word)."""
        with converted("query", self._location):
            return self._reader.schema

    def cancel(self) -> None:
        """End the call from any thread: the reading thread's iteration stops with an error."""
        self._reader.cancel()

    def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(flight.FlightError, pa.ArrowException):
            self._writer.close()
        if self._connection is not None:
            self._connection.close()

    def __enter__(self) -> LiveSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """One connection to a flightdeck server: queries, loads, the catalog, live updates.

    Errors are flightdeck.Error subclasses carrying the server's message (the
    pyarrow exception stays as `__cause__`). Use it as a context manager, or
    call `close()`.

    `track()` sends events in the background (see tracker.py): in batches of
    `track_batch` or every `track_interval_s` seconds, holding at most
    `track_queue` events (the oldest are dropped beyond), calling
    `on_track_error(TrackFailure)` for events given up.
    """

    def __init__(
        self,
        location: str = DEFAULT_LOCATION,
        *,
        token: str | None = None,
        track_batch: int = 500,
        track_interval_s: float = 1.0,
        track_queue: int = 10_000,
        on_track_error: Callable[[TrackFailure], Any] | None = None,
    ) -> None:
        self.location = location
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else None
        # One options object for every call, so no call can forget the token.
        self._options = flight.FlightCallOptions(headers=headers)
        self._flight = flight.connect(location, middleware=[DETAIL_TRAILERS])
        self._elsewhere: dict[str, flight.FlightClient] = {}
        self._open: set[flight.FlightStreamReader] = set()
        # Built now so that bad options fail here; its thread starts on the first track().
        self.tracker = Tracker(
            location,
            headers=headers,
            batch=track_batch,
            interval_s=track_interval_s,
            max_queue=track_queue,
            on_error=on_track_error,
        )

    # -- reading ---------------------------------------------------------------

    def query(self, sql: str) -> pa.Table:
        """The whole result of one read-only SELECT/WITH over `va_` views."""
        return self.query_reader(sql).read_all()

    def query_reader(self, sql: str) -> pa.RecordBatchReader:
        """The result as a stream of record batches, read from the server as you go.

        Errors the server reports before the first batch are raised here; errors in
        mid-stream are raised by the reader.
        """
        descriptor = flight.FlightDescriptor.for_command(sql.encode("utf-8"))
        with converted("query", self.location):
            info = self._flight.get_flight_info(descriptor, self._options)
            endpoints = list(info.endpoints)
            if not endpoints:
                return pa.RecordBatchReader.from_batches(info.schema, [])
            # The first stream is opened now, so that a refusal surfaces here and the
            # reader has the schema the server actually sends.
            first = self._stream(endpoints[0])
            schema = first.schema
        return pa.RecordBatchReader.from_batches(schema, self._batches(first, endpoints[1:]))

    def query_pandas(self, sql: str) -> pandas.DataFrame:
        """The result as a DataFrame; QueryError if it holds a date pandas cannot hold.

        A store filled before the server refused such times may hold years past 9999.
        """
        table = self.query(sql)
        far = first_far(table)
        if far is not None:
            column, row, value = far
            raise QueryError(
                f"column {column!r}, row {row}: {value} is past what pandas and Python "
                "can hold (years 1 to 9999); leave such rows out with WHERE, or CAST the "
                "column to text (query() returns it as Arrow)",
                rule="timestamp",
                column=column,
                row=row,
            )
        return table.to_pandas()

    def query_polars(self, sql: str) -> polars.DataFrame:
        try:
            import polars
        except ImportError as exc:
            raise ImportError(
                "query_polars needs Polars, which is not installed: pip install polars"
            ) from exc
        return polars.from_arrow(self.query(sql))

    def view(
        self,
        name: str,
        where: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> pa.Table:
        """Rows of view `name`, filtered on the server.

        `where` maps a column to a value (None: IS NULL), to `{"in": [...]}`, or to
        operators: `{">=": "2024-01-01", "<": "2024-02-01"}` (also `=`, `!=`, `>`,
        `<=`). Dates and datetimes may be given as ISO text or as Python objects.
        """
        return self.query(select_view(name, where, columns, limit))

    def views(self) -> list[ViewInfo]:
        """The catalog: every `va_` view with its Arrow schema (and row count when known)."""
        with converted("other", self.location):
            infos = list(self._flight.list_flights(options=self._options))
        catalog = []
        for info in infos:
            path = info.descriptor.path or []
            if len(path) == 1:
                rows = info.total_records if info.total_records >= 0 else None
                catalog.append(ViewInfo(path[0].decode("utf-8", "replace"), info.schema, rows))
        return sorted(catalog, key=lambda view: view.name)

    # -- writing ---------------------------------------------------------------

    def load(
        self, source: LoadSource, *, progress: bool = True, batch_rows: int = 65_536
    ) -> LoadResult:
        """Send page-view events as one DoPut: all of them are committed, or none.

        `source`: a pyarrow Table, RecordBatch or RecordBatchReader, a pandas
        DataFrame, or the path of a Parquet (.parquet, .pq) or CSV (.csv) file,
        streamed in batches of at most `batch_rows` rows. A refused load raises
        LoadError naming the column, row and rule.
        """
        opened = open_source(source, batch_rows)
        started = time.perf_counter()
        with _progress_bar(opened.total_rows, progress) as bar:
            with converted("load", self.location), load_put.nothing_sent_yet():
                put = load_put.Put(self._flight, _EVENTS, self._options)
            try:
                reply = put.run(opened.schema, _read(opened), bar, self.load_status)
            except pa.ArrowException as exc:  # the server refused the put
                raise from_arrow(exc, "load", self.location, DETAIL_TRAILERS.last_detail()) from exc
        seconds = time.perf_counter() - started
        try:
            summary = json.loads(reply.to_pybytes()) if reply is not None else {}
            accepted, duplicates = int(summary["accepted"]), int(summary["duplicates"])
        except (ValueError, KeyError, TypeError) as exc:
            raise LoadError(
                f"the server sent no load summary (got {reply!r}); is this a flightdeck server?"
            ) from exc
        return LoadResult(accepted, duplicates, put.rows, seconds)

    def load_status(self, load_id: str) -> dict:
        """Whether the load `load_id` (LoadInterrupted.load_id) was committed:
        `{"load_id", "committed"}`, with `"accepted"` and `"duplicates"` when it was."""
        action = flight.Action("load-status", load_id.encode())
        with converted("load-status", self.location):
            (result,) = self._flight.do_action(action, self._options)
        return json.loads(result.body.to_pybytes())

    def track(self, event_type: str, **fields: Any) -> str:
        """Queue one event of `event_type` for the background sender; its `event_id`.

        Returns at once. `event_id` (uuid4 hex unless given), `recorded_at` (now, UTC,
        unless given), `session_id`, `user_id`, `page_url`, `referrer`, `user_agent`,
        `duration_s` and `properties` (a mapping) are the event's columns; any other
        keyword goes into `properties`. A failed send is retried and reported
        (`self.tracker.stats()`, logging, `on_track_error`), never raised here.
        """
        return self.tracker.track(event_type, **fields)

    # -- live ------------------------------------------------------------------

    def subscribe(
        self,
        view: str,
        *,
        where: dict[str, Any] | None = None,
        columns: list[str] | None = None,
        changes_on: list[str] | None = None,
        snapshot: bool = True,
        cursor: int | None = None,
        messages: int = 1,
        min_interval_ms: int = 0,
        top: dict[str, Any] | None = None,
        lifetime: str | None = None,
    ) -> LiveSubscription:
        """Follow `view` live: a snapshot (unless `snapshot=False`), then updates.

        `where` takes the shape `view()` takes, on any column; a row that stops
        matching comes as `remove`. Pass the last `cursor` you saw to resume.
        `messages=2` names changed rows `upsert` instead of `update`;
        `min_interval_ms` has the server send at most that often, newest row per key.
        `top` ({"order_by": "visits", "desc": True, "limit": 10}) follows a top-N.
        Resume with the last `cursor` and `lifetime` the subscription saw: a cursor
        from another lifetime of the server's update log gets `resync`.
        """
        request = live_request(
            view,
            where=where,
            columns=columns,
            changes_on=changes_on,
            snapshot=snapshot,
            cursor=cursor,
            messages=messages,
            min_interval_ms=min_interval_ms,
            top=top,
            lifetime=lifetime,
        )
        return self.exchange(request)

    def exchange(
        self, request: dict[str, Any], *, new_connection: bool = False
    ) -> LiveSubscription:
        """Open a live subscription from its JSON `request` (see `live_request`).

        `new_connection`: on a connection of its own, closed with the subscription. A
        resume after a server restart wants one: a used gRPC channel may wait out its
        own reconnect backoff (up to minutes) before it tries the server again.
        """
        connection = (
            flight.connect(self.location, middleware=[DETAIL_TRAILERS]) if new_connection else None
        )
        descriptor = flight.FlightDescriptor.for_command(json.dumps(request).encode())
        try:
            with converted("query", self.location):
                writer, reader = (connection or self._flight).do_exchange(descriptor, self._options)
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        return LiveSubscription(writer, reader, self.location, connection)

    # -- lifecycle -------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the query streams open on this client (safe from another thread): the
        server stops their queries, and their readers raise."""
        for stream in list(self._open):
            with contextlib.suppress(pa.ArrowException):
                stream.cancel()

    def close(self) -> None:
        """Send the tracked events still queued (for at most the tracker's bound), then
        close the connections."""
        self.tracker.close()
        for other in self._elsewhere.values():
            other.close()
        self._elsewhere.clear()
        self._flight.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------

    def _stream(self, endpoint: flight.FlightEndpoint) -> flight.FlightStreamReader:
        stream = self._client_for(endpoint).do_get(endpoint.ticket, self._options)
        self._open.add(stream)
        return stream

    def _client_for(self, endpoint: flight.FlightEndpoint) -> flight.FlightClient:
        uris = [loc.uri.decode() for loc in endpoint.locations]
        uri = next((u for u in uris if not u.startswith(_REUSE)), None)
        if uri is None:
            return self._flight
        if uri not in self._elsewhere:
            self._elsewhere[uri] = flight.connect(uri, middleware=[DETAIL_TRAILERS])
        return self._elsewhere[uri]

    def _batches(
        self, first: flight.FlightStreamReader, rest: list[flight.FlightEndpoint]
    ) -> Iterator[pa.RecordBatch]:
        stream = first
        opened = [first]
        with converted("query", self.location):
            try:
                while True:
                    for chunk in stream:
                        if chunk.data is not None:
                            yield chunk.data
                    if not rest:
                        stream = None
                        return
                    stream = self._stream(rest.pop(0))
                    opened.append(stream)
            finally:
                if stream is not None:  # abandoned half-way: let the server stop its query
                    with contextlib.suppress(pa.ArrowException):
                        stream.cancel()
                self._open.difference_update(opened)  # other queries' streams stay cancellable

    def multiplex(self) -> Multiplex:
        """One DoExchange stream carrying many live subscriptions (clients/live_mux.py):
        `subscribe(view, **options) -> id`, `unsubscribe(id)`, and iterate for
        `LiveMessage(id, kind, table, cursor, detail)`. Costs the server no thread per
        subscription; `subscribe()` here opens one stream per subscription."""
        descriptor = flight.FlightDescriptor.for_command(b'{"multiplex": true}')
        with converted("query", self.location):
            writer, reader = self._flight.do_exchange(descriptor, self._options)
        return Multiplex(writer, reader)


def _read(opened: Source) -> Iterator[pa.RecordBatch]:
    """The source's batches; an error reading them is the source's fault, not the server's."""
    try:
        yield from opened.batches
    except pa.ArrowException as exc:
        raise LoadError(
            f"cannot read {opened.name}: {exc}; nothing was loaded", rule="source"
        ) from exc


@contextlib.contextmanager
def _progress_bar(total: int | None, show: bool) -> Iterator[Any]:
    if not show:
        yield _NoBar()
        return
    from tqdm.auto import tqdm  # only when shown: importing it is not free

    # "100k/100k" reads better than "100000/100000", but "2.00/2.00" worse than "2/2".
    scale = total is None or total >= 10_000
    with tqdm(total=total, unit="rows", unit_scale=scale, desc="load") as bar:
        yield bar


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass
