"""A realistic page-view stream, in the order a real site's events arrive.

Visitors' sessions start at random (a Poisson process); each has 1-12 views a few
seconds to minutes apart, so sessions interleave and a session straddles any cut
of the stream into puts or NATS batches. Pages are zipf-popular among a few
thousand URLs; referrers, user agents (bots included) and JSON properties vary
as a real site's do; some sessions are logged in. A small fraction of events
arrives late (minutes to hours after it was recorded) and a small fraction is
resent (the same event_id again, a little later).

`EventStream(seed).take(n)` returns the next `n` events of one endless stream:
deterministic from the seed whatever the sizes taken, so two cursors with the
same seed feed two stores the same content. Built block by block with numpy and
Arrow compute: millions of events per second, no Python loop per event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Chunk", "EventStream", "StreamShape", "json_messages"]

_SITE = "https://www.example.com"
_SECTIONS = ("blog", "docs", "product", "help", "news", "guides", "pricing/plan")
# (user agent, share of sessions); bots are a few percent, as on most public sites.
_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", 30),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        18,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 "
        "Mobile Safari/537.36",
        14,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
        "Version/17.5 Safari/605.1.15",
        10,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Edg/126.0", 6),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", 4),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", 3),
    ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 SamsungBrowser/25.0", 3),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 2),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 1),
    ("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", 1),
    ("curl/8.5.0", 1),
)
# (referrer of a session's first view or None for direct, share, utm_source or None)
_REFERRERS = (
    (None, 38, None),
    ("https://www.google.com/", 26, None),
    ("https://www.bing.com/search?q=example", 4, None),
    ("https://duckduckgo.com/", 3, None),
    ("https://t.co/", 5, "twitter"),
    ("https://www.facebook.com/", 4, "facebook"),
    ("https://www.linkedin.com/", 3, "linkedin"),
    ("https://www.reddit.com/r/programming/", 3, "reddit"),
    ("https://news.ycombinator.com/", 2, "hn"),
    ("https://github.com/", 4, None),
    ("https://stackoverflow.com/questions", 3, None),
    (None, 5, "newsletter"),  # e-mail: no referrer, but campaign tags
)
_LANGS = np.array(["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP", "pt-BR", "nl-NL"])
_SCREENS = np.array(["1920x1080", "1366x768", "390x844", "412x915", "1536x864", "2560x1440"])
_CAMPAIGNS = np.array(["spring_launch", "weekly_digest", "retarget_q2", "webinar_june"])


@dataclass(frozen=True)
class StreamShape:
    start: dt.datetime = dt.datetime(2024, 3, 4, tzinfo=dt.UTC)
    sessions_per_s: float = 5.0  # about 1.5 M events a day: a busy site
    pages: int = 3_000
    zipf_s: float = 1.1  # page popularity: share of rank r ∝ 1 / r**s
    view_decay: float = 0.72  # share of sessions with v views ∝ decay**(v - 1), v in 1..12
    median_gap_s: float = 30.0  # between a session's views (lognormal, 2 s to 15 min)
    logged_in: float = 0.3
    users: int = 50_000
    late: float = 0.005  # events that arrive 2 min to 6 h after they were recorded
    resent: float = 0.01  # events sent again, 1 s to 10 min after the first send
    no_properties: float = 0.1
    block_sessions: int = 20_000  # sessions generated at a time; the same for any take()


@dataclass(frozen=True)
class Chunk:
    events: pa.Table  # data.EVENT_COLUMNS, in arrival order
    resent: pa.ChunkedArray  # True where the row resends an event_id sent before

    def first_sends(self) -> pa.Table:
        """What a store that dedupes keeps of this chunk: the rows not resent."""
        return self.events.filter(pc.invert(self.resent))


class EventStream:
    def __init__(self, seed: int = 17, shape: StreamShape | None = None) -> None:
        self.seed = seed
        self.shape = shape or StreamShape()
        self._rng = np.random.default_rng(seed)
        self._probs = _zipf(self.shape.pages, self.shape.zipf_s)
        self._urls = pa.array(_page_urls(self.shape.pages))
        self._next_session = 0
        self._next_start_us = _us(self.shape.start)
        self._ready: list[pa.Table] = []  # in arrival order, all before the frontier
        self._ready_rows = 0
        self._pending = _EMPTY  # arrives at or after the frontier: more may come before it
        self.taken = 0

    def take(self, n: int) -> Chunk:
        """The next `n` events in arrival order."""
        while self._ready_rows < n:
            self._advance()
        ready = pa.concat_tables(self._ready)
        out, rest = ready.slice(0, n), ready.slice(n)
        self._ready, self._ready_rows = [rest], rest.num_rows
        self.taken += n
        return Chunk(out.drop_columns(["arrival_us", "resent"]), out["resent"])

    def _advance(self) -> None:
        """Generate one block of sessions; release what can arrive before the next."""
        block = self._block()
        frontier = self._next_start_us  # no later session has an event before this
        both = pa.concat_tables([self._pending, block])
        both = both.take(np.argsort(both["arrival_us"].to_numpy(), kind="stable"))
        arrival = both["arrival_us"].to_numpy()
        cut = int(np.searchsorted(arrival, frontier, side="left"))
        self._ready.append(both.slice(0, cut))
        self._ready_rows += cut
        self._pending = both.slice(cut)

    def _block(self) -> pa.Table:
        shape, rng = self.shape, self._rng
        k = shape.block_sessions
        ids = np.arange(self._next_session, self._next_session + k)
        self._next_session += k
        gaps = rng.exponential(1e6 / shape.sessions_per_s, k)
        starts = self._next_start_us + np.concatenate(([0.0], np.cumsum(gaps[:-1])))
        self._next_start_us = int(starts[-1] + gaps[-1])
        views = _choice(rng, shape.view_decay ** np.arange(12), k) + 1
        sess = np.repeat(np.arange(k), views)  # each event's session, grouped by session
        total = len(sess)
        first = np.concatenate(([0], np.cumsum(views)[:-1]))
        view = np.arange(total) - np.repeat(first, views)

        gap = np.clip(rng.lognormal(np.log(shape.median_gap_s), 1.0, total), 2.0, 900.0)
        gap[view == 0] = 0.0
        offset = np.cumsum(gap)
        offset -= np.repeat(offset[first], views)  # seconds since the session's first view
        recorded = (starts[sess] + offset * 1e6).astype(np.int64)

        late = rng.random(total) < shape.late
        delay = np.exp(rng.uniform(np.log(120.0), np.log(6 * 3600.0), total)) * 1e6
        arrival = recorded + np.where(late, delay, 0).astype(np.int64)

        page = _choice(rng, self._probs, total)
        table = self._columns(rng, ids, sess, view, first, views, page, recorded)
        table = table.append_column("arrival_us", pa.array(arrival))
        table = table.append_column("resent", pa.array(np.zeros(total, dtype=bool)))
        again = np.flatnonzero(rng.random(total) < shape.resent)
        resend_after = rng.uniform(1.0, 600.0, len(again)) * 1e6
        copies = table.take(again)
        copies = copies.set_column(
            copies.schema.get_field_index("arrival_us"),
            "arrival_us",
            pa.array(arrival[again] + resend_after.astype(np.int64)),
        )
        copies = copies.set_column(
            copies.schema.get_field_index("resent"), "resent", pa.array(np.ones(len(again), bool))
        )
        return pa.concat_tables([table, copies])

    def _columns(self, rng, ids, sess, view, first, views, page, recorded) -> pa.Table:
        shape, k, total = self.shape, len(ids), len(sess)
        session_id = _text(f"s{self.seed}-", pa.array(ids))
        session_of = session_id.take(pa.array(sess))
        event_id = pc.binary_join_element_wise(
            session_of, pc.cast(pa.array(view), pa.string()), ":"
        )
        page_url = self._urls.take(pa.array(page))

        agent = _choice(rng, np.array([w for _, w in _AGENTS], float), k)
        user_agent = pa.array([a for a, _ in _AGENTS]).take(pa.array(agent[sess]))
        source = _choice(rng, np.array([w for _, w, _ in _REFERRERS], float), k)
        external = pa.array([r for r, _, _ in _REFERRERS], pa.string()).take(pa.array(source[sess]))
        previous = self._urls.take(pa.array(np.where(view > 0, np.roll(page, 1), 0)))
        internal = pc.binary_join_element_wise(_SITE, previous, "")
        referrer = pc.if_else(pa.array(view == 0), external, internal)

        logged = rng.random(k) < shape.logged_in
        user = _choice(rng, _zipf(shape.users, 1.0), k)
        user_id = pc.if_else(
            pa.array(logged[sess]), _text("u", pa.array(user[sess])), pa.scalar(None, pa.string())
        )
        last = view == views[sess] - 1
        duration = np.round(rng.lognormal(np.log(25.0), 1.1, total), 1)
        duration_s = pa.array(np.where(last, np.nan, duration), from_pandas=True)
        properties = self._properties(rng, sess, view, source, k, total)
        return pa.table(
            {
                "event_id": event_id,
                "session_id": session_of,
                "page_url": page_url,
                "recorded_at": pa.array(recorded, pa.timestamp("us", "UTC")),
                "user_id": user_id,
                "referrer": referrer,
                "user_agent": user_agent,
                "duration_s": duration_s,
                "properties": properties,
            }
        )

    def _properties(self, rng, sess, view, source, k, total) -> pa.Array:
        """JSON objects whose keys vary: lang and screen per session, utm_* on the first
        view of a campaign session, an A/B variant for some, scroll depth per view."""
        lang = pa.array(_LANGS).take(pa.array(rng.integers(0, len(_LANGS), k)[sess]))
        screen = pa.array(_SCREENS).take(pa.array(rng.integers(0, len(_SCREENS), k)[sess]))
        campaign = pa.array(_CAMPAIGNS).take(pa.array(rng.integers(0, len(_CAMPAIGNS), k)[sess]))
        head = pa.array(_UTM_HEADS).take(pa.array(source[sess]))
        tagged = pa.array(
            (np.array([u is not None for _, _, u in _REFERRERS])[source][sess]) & (view == 0)
        )
        utm = pc.if_else(tagged, pc.binary_join_element_wise(head, campaign, '"', ""), "")
        variant = rng.integers(0, 4, k)[sess]
        ab = pc.if_else(pa.array(variant == 0), "", _text(', "ab": "variant-', pa.array(variant)))
        ab = pc.if_else(pa.array(variant == 0), "", pc.binary_join_element_wise(ab, '"', ""))
        scroll = pc.cast(pa.array(rng.integers(0, 101, total)), pa.string())
        text = pc.binary_join_element_wise(
            '{"lang": "',
            lang,
            '", "screen": "',
            screen,
            '"',
            utm,
            ab,
            ', "scroll": ',
            scroll,
            "}",
            "",
        )
        none = pa.array(rng.random(total) < self.shape.no_properties)
        return pc.if_else(none, pa.scalar(None, pa.string()), text)


_UTM_HEADS = [
    ""
    if u is None
    else f', "utm_source": "{u}", "utm_medium": "{"email" if r is None else "social"}", '
    '"utm_campaign": "'
    for r, _, u in _REFERRERS
]
_EMPTY = pa.table(
    {
        "event_id": pa.array([], pa.string()),
        "session_id": pa.array([], pa.string()),
        "page_url": pa.array([], pa.string()),
        "recorded_at": pa.array([], pa.timestamp("us", "UTC")),
        "user_id": pa.array([], pa.string()),
        "referrer": pa.array([], pa.string()),
        "user_agent": pa.array([], pa.string()),
        "duration_s": pa.array([], pa.float64()),
        "properties": pa.array([], pa.string()),
        "arrival_us": pa.array([], pa.int64()),
        "resent": pa.array([], pa.bool_()),
    }
)


def _us(t: dt.datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def _zipf(n: int, s: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return weights / weights.sum()


def _choice(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with the given (unnormalised) weights: inverse CDF, vectorised."""
    cdf = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(weights) - 1)


def _page_urls(n: int) -> list[str]:
    """`n` distinct paths, the most popular first: the home page, then section pages."""
    urls = ["/", "/pricing", "/about", "/signup", "/login", "/docs", "/blog"]
    i = 0
    while len(urls) < n:
        section = _SECTIONS[i % len(_SECTIONS)]
        urls.append(f"/{section}/{i // len(_SECTIONS) + 1:04d}-{_slug(i)}")
        i += 1
    return urls[:n]


def _slug(i: int) -> str:
    words = ("getting-started", "release-notes", "how-to", "faq", "case-study", "deep-dive")
    return words[(i * 7) % len(words)]


def _text(prefix: str, values: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(values, pa.string()), "")


def json_messages(table: pa.Table) -> list[bytes]:
    """One JSON message per row, as a site's collector publishes them: every field, the
    properties as a nested object, the time as ISO 8601 text. Encoded before any clock."""
    import json

    out = []
    for row in table.to_pylist():
        event = {k: v for k, v in row.items() if v is not None and v == v}  # drop None, NaN
        event["recorded_at"] = row["recorded_at"].isoformat().replace("+00:00", "Z")
        if "properties" in event:
            event["properties"] = json.loads(event["properties"])
        out.append(json.dumps(event).encode())
    return out
