"""What the recorder does differently for each venue (SPEC section 20).

A :class:`Venue` knows its public WebSocket's subscriptions and keepalive, turns
each frame into a :class:`Frame` (data for an instrument's raw file, or a
control message), and fetches the trades of a hole from its REST history.  The
lines are written as received: the readers of sections 9, 10, 15 and 17 read
them.  Only a push whose trades were partly written already is rewritten
without those trades.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import orjson

CHANNELS = ("trades", "books", "derivs")

GetJson = Callable[[str], Awaitable[Any]]  # a REST GET of a URL, its JSON reply (raises on failure)


@dataclass(frozen=True)
class Target:
    """One instrument to record: its vault label ``exchange/market/SYMBOL`` and the channels."""

    label: str
    channels: tuple[str, ...]

    @property
    def exchange(self) -> str:
        return self.label.split("/")[0]

    @property
    def symbol(self) -> str:
        return self.label.split("/")[2]


@dataclass
class Frame:
    """One received frame.  ``what`` is ``"data"`` (a push for a raw file), ``"pong"``, ``"ack"`` (a
    subscription confirmed), ``"notice"`` (OKX 64008: the server will close this connection soon),
    ``"error"`` or ``"other"``."""

    what: str
    kind: str = ""  # data: "trades", "books" or "derivs"
    label: str = ""  # data: the instrument folder the line goes to
    line: bytes = b""  # data: the frame as received
    exchange_ms: int | None = None  # data: the venue's time of the push
    doc: Any = None  # the parsed frame
    trade_ids: list[tuple[int, int]] = field(default_factory=list)  # trades: (first id, last id) per trade record
    seq: int | None = None  # books: the push's sequence number where the venue sends one
    text: str = ""  # error / other: what it said


class Venue:
    """The base of the three venues: what they share."""

    name = ""
    ping_text: str | None = None  # an application-level ping; None: WebSocket protocol pings
    int_ids = True  # trade ids are consecutive integers (a hole can be found, and fetched)

    def __init__(self, targets: list[Target], endpoints: dict[str, str], liquidation_label: str | None = None) -> None:
        self.targets = targets
        self.ws_url = endpoints[f"{self.name}_ws"]
        self.rest_url = endpoints[f"{self.name}_rest"].rstrip("/")
        self.by_symbol = {t.symbol: t for t in targets}
        self.liquidation_label = liquidation_label

    def subscriptions(self) -> list[str]:
        raise NotImplementedError

    def parse(self, raw: str | bytes) -> Frame:
        raise NotImplementedError

    async def fetch_trades(self, get: GetJson, symbol: str, after_id: int, before_id: int | None,
                           since_ms: int) -> tuple[list[bytes], list[tuple[int, int]], int]:
        """The trades with ``after_id < id < before_id`` (``before_id`` None: up to now) and time at or after
        ``since_ms``, as lines in id order, with their ``(id, ts)``, and how many requests it took."""
        raise NotImplementedError

    async def book_snapshot(self, get: GetJson, symbol: str) -> bytes | None:
        """A REST snapshot to write into the books file after (re)connecting (Binance), or None."""
        return None

    def book_step(self, frame: Frame, last: int | None) -> tuple[int | None, str | None]:
        """A books push against the sequence number of the one before (``last``): the number to compare the
        next one with, and what is wrong when the two do not chain (a push lost: a sequence gap)."""
        return frame.seq, None

    def resubscribe_books(self, symbol: str) -> list[str]:
        """Messages that make the venue send a new book snapshot of ``symbol`` (after a sequence gap)."""
        return []

    def _data(self, kind: str, symbol: str, raw: str | bytes, doc: Any, ms: int | None, **kw: Any) -> Frame:
        target = self.by_symbol.get(symbol)
        if target is None or kind not in target.channels:
            return Frame("other", doc=doc, text=f"{kind} of {symbol}, not recorded")
        line = raw.encode() if isinstance(raw, str) else bytes(raw)
        return Frame("data", kind, target.label, line, ms, doc, **kw)


def _object(raw: str | bytes) -> tuple[dict[str, Any] | None, Frame | None]:
    """A frame's JSON object, or the error frame saying why it is none."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, Frame("error", text=f"not JSON: {raw[:120]!r}")
    if not isinstance(doc, dict):
        return None, Frame("error", text=f"not an object: {raw[:120]!r}")
    return doc, None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class Okx(Venue):
    name = "okx"
    ping_text = "ping"  # OKX: the text "ping" after 20 s without a message, answered by "pong"
    BOOK_CHANNELS = ("books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt")

    def __init__(self, targets: list[Target], endpoints: dict[str, str], liquidation_label: str | None = None,
                 book_channel: str = "books") -> None:
        super().__init__(targets, endpoints, liquidation_label)
        self.book_channel = book_channel

    def subscriptions(self) -> list[str]:
        args: list[dict[str, str]] = []
        for t in self.targets:
            if "trades" in t.channels:
                args.append({"channel": "trades", "instId": t.symbol})
            if "books" in t.channels:
                args.append({"channel": self.book_channel, "instId": t.symbol})
            if "derivs" in t.channels:
                args += [{"channel": "funding-rate", "instId": t.symbol}, {"channel": "open-interest", "instId": t.symbol}]
        if self.liquidation_label is not None:  # one feed per instrument type, written to one folder
            args.append({"channel": "liquidation-orders", "instType": "SWAP"})
        return [orjson.dumps({"op": "subscribe", "args": args[k:k + 100]}).decode() for k in range(0, len(args), 100)]

    def parse(self, raw: str | bytes) -> Frame:
        if raw in ("pong", b"pong"):
            return Frame("pong")
        doc, bad = _object(raw)
        if doc is None:
            return bad  # type: ignore[return-value]
        event = doc.get("event")
        if event is not None:
            if event == "subscribe":
                return Frame("ack", doc=doc)
            if event == "notice" and str(doc.get("code")) == "64008":
                return Frame("notice", doc=doc, text=str(doc.get("msg", "")))
            return Frame("error" if event == "error" else "other", doc=doc, text=str(doc.get("msg", event)))
        arg, data = doc.get("arg"), doc.get("data")
        if not isinstance(arg, dict) or not isinstance(data, list) or not data or not isinstance(data[0], dict):
            return Frame("other", doc=doc, text="no data")
        channel = arg.get("channel")
        if channel == "trades":
            ids, ms = [], None
            for d in data:
                last, count, ts = _int(d.get("tradeId")), _int(d.get("count")) or 1, _int(d.get("ts"))
                if last is None or ts is None:
                    return Frame("error", doc=doc, text="a trade without an integer tradeId or ts")
                ids.append((last - count + 1, last))
                ms = ts if ms is None else max(ms, ts)
            return self._data("trades", str(arg.get("instId")), raw, doc, ms, trade_ids=ids)
        if channel in self.BOOK_CHANNELS:
            return self._data("books", str(arg.get("instId")), raw, doc, _int(data[0].get("ts")),
                              seq=_int(data[0].get("seqId")))
        if channel in ("funding-rate", "open-interest"):
            return self._data("derivs", str(arg.get("instId")), raw, doc, _int(data[0].get("ts")))
        if channel == "liquidation-orders" and self.liquidation_label is not None:
            details = data[0].get("details") or [{}]
            line = raw.encode() if isinstance(raw, str) else bytes(raw)
            return Frame("data", "derivs", self.liquidation_label, line, _int(details[0].get("ts")), doc)
        return Frame("other", doc=doc, text=f"channel {channel!r}")

    def book_step(self, frame: Frame, last: int | None) -> tuple[int | None, str | None]:
        d = frame.doc["data"][0]
        prev = _int(d.get("prevSeqId"))
        if frame.doc.get("action") == "snapshot" or frame.seq is None:
            return frame.seq, None
        if last is not None and prev is not None and prev != last:
            return frame.seq, f"prevSeqId {prev} after seqId {last}"
        return frame.seq, None

    def resubscribe_books(self, symbol: str) -> list[str]:
        arg = {"channel": self.book_channel, "instId": symbol}
        return [orjson.dumps({"op": op, "args": [arg]}).decode() for op in ("unsubscribe", "subscribe")]

    async def fetch_trades(self, get: GetJson, symbol: str, after_id: int, before_id: int | None,
                           since_ms: int) -> tuple[list[bytes], list[tuple[int, int]], int]:
        # /history-trades pages back from `after` (older than it), newest first, 100 a page
        got: dict[int, tuple[bytes, int]] = {}
        cursor, pages = before_id, 0
        while True:
            query = {"instId": symbol, "type": "1", "limit": "100"}
            if cursor is not None:
                query["after"] = str(cursor)
            reply = await get(f"{self.rest_url}/api/v5/market/history-trades?{urllib.parse.urlencode(query)}")
            pages += 1
            if not isinstance(reply, dict) or str(reply.get("code")) != "0" or not isinstance(reply.get("data"), list):
                raise ValueError(f"history-trades replied {str(reply)[:200]}")
            items = reply["data"]
            oldest = None
            for item in items:
                tid, ts = _int(item.get("tradeId")), _int(item.get("ts"))
                if tid is None or ts is None:
                    raise ValueError(f"history-trades item without tradeId/ts: {item}")
                oldest = tid if oldest is None else min(oldest, tid)
                if tid > after_id and (before_id is None or tid < before_id) and ts >= since_ms:
                    got[tid] = (orjson.dumps(item), ts)
            if not items or oldest is None or oldest <= after_id + 1 or oldest == cursor:
                break
            if min(int(i["ts"]) for i in items) < since_ms:
                break
            cursor = oldest
        order = sorted(got)
        return [got[i][0] for i in order], [(i, got[i][1]) for i in order], pages


class Binance(Venue):
    name = "binance"
    STREAMS = {"trades": ("aggTrade",), "books": ("depth@100ms",), "derivs": ("forceOrder", "markPrice@1s")}

    def subscriptions(self) -> list[str]:
        params = [f"{t.symbol.lower()}@{s}" for t in self.targets for ch in t.channels for s in self.STREAMS[ch]]
        return [orjson.dumps({"method": "SUBSCRIBE", "params": params[k:k + 200], "id": k + 1}).decode()
                for k in range(0, len(params), 200)]

    def parse(self, raw: str | bytes) -> Frame:
        doc, bad = _object(raw)
        if doc is None:
            return bad  # type: ignore[return-value]
        if "result" in doc and "id" in doc:
            return Frame("ack", doc=doc)
        data = doc.get("data", doc)
        if not isinstance(data, dict):
            return Frame("other", doc=doc)
        event = data.get("e")
        if event == "aggTrade":
            a = _int(data.get("a"))
            if a is None:
                return Frame("error", doc=doc, text="an aggTrade without an integer a")
            return self._data("trades", str(data.get("s")), raw, doc, _int(data.get("T")), trade_ids=[(a, a)])
        if event == "depthUpdate":
            return self._data("books", str(data.get("s")), raw, doc, _int(data.get("E")), seq=_int(data.get("u")))
        if event == "forceOrder":
            order = data.get("o") or {}
            return self._data("derivs", str(order.get("s")), raw, doc, _int(data.get("E")))
        if event == "markPriceUpdate":
            return self._data("derivs", str(data.get("s")), raw, doc, _int(data.get("E")))
        if "code" in doc and "msg" in doc:
            return Frame("error", doc=doc, text=str(doc["msg"]))
        return Frame("other", doc=doc)

    async def fetch_trades(self, get: GetJson, symbol: str, after_id: int, before_id: int | None,
                           since_ms: int) -> tuple[list[bytes], list[tuple[int, int]], int]:
        lines, ids, pages = [], [], 0
        query: dict[str, str] = {"symbol": symbol, "limit": "1000", "fromId": str(after_id + 1)}
        while True:
            reply = await get(f"{self.rest_url}/fapi/v1/aggTrades?{urllib.parse.urlencode(query)}")
            pages += 1
            if not isinstance(reply, list):
                raise ValueError(f"aggTrades replied {str(reply)[:200]}")
            last = None
            for item in reply:
                a, ts = _int(item.get("a")), _int(item.get("T"))
                if a is None or ts is None:
                    raise ValueError(f"aggTrades item without a/T: {item}")
                last = a
                if a <= after_id or (before_id is not None and a >= before_id) or ts < since_ms:
                    continue
                event = {"e": "aggTrade", "E": ts, "s": symbol, **{k: item[k] for k in ("a", "p", "q", "f", "l", "T", "m")
                                                                   if k in item}}
                lines.append(orjson.dumps(event))
                ids.append((a, ts))
            if not reply or last is None or (before_id is not None and last >= before_id - 1) or len(reply) < 1000:
                break
            query["fromId"] = str(last + 1)
        return lines, ids, pages

    def book_step(self, frame: Frame, last: int | None) -> tuple[int | None, str | None]:
        pu = _int(frame.doc.get("data", frame.doc).get("pu"))
        if last is not None and pu is not None and pu != last:
            return frame.seq, f"pu {pu} after u {last}"
        return frame.seq, None

    async def book_snapshot(self, get: GetJson, symbol: str) -> bytes | None:
        reply = await get(f"{self.rest_url}/fapi/v1/depth?{urllib.parse.urlencode({'symbol': symbol, 'limit': '1000'})}")
        if not isinstance(reply, dict) or "lastUpdateId" not in reply:
            raise ValueError(f"depth replied {str(reply)[:200]}")
        return orjson.dumps(reply)


class Bybit(Venue):
    name = "bybit"
    ping_text = '{"op":"ping"}'  # Bybit: a ping every 20 s keeps the connection
    int_ids = False  # text ids: repeats are dropped by id, holes cannot be found by id
    TOPICS = {"trades": ("publicTrade.{s}",), "books": ("orderbook.50.{s}",),
              "derivs": ("allLiquidation.{s}", "tickers.{s}")}

    def book_step(self, frame: Frame, last: int | None) -> tuple[int | None, str | None]:
        if frame.doc.get("type") == "snapshot" or frame.seq is None:
            return frame.seq, None
        if last is not None and frame.seq != last + 1:
            return frame.seq, f"u {frame.seq} after u {last}"
        return frame.seq, None

    def resubscribe_books(self, symbol: str) -> list[str]:
        topic = self.TOPICS["books"][0].format(s=symbol)
        return [orjson.dumps({"op": op, "args": [topic]}).decode() for op in ("unsubscribe", "subscribe")]

    def subscriptions(self) -> list[str]:
        args = [topic.format(s=t.symbol) for t in self.targets for ch in t.channels for topic in self.TOPICS[ch]]
        return [orjson.dumps({"op": "subscribe", "args": args[k:k + 10]}).decode() for k in range(0, len(args), 10)]

    def parse(self, raw: str | bytes) -> Frame:
        doc, bad = _object(raw)
        if doc is None:
            return bad  # type: ignore[return-value]
        op = doc.get("op")
        if op in ("pong", "ping") or doc.get("ret_msg") == "pong":
            return Frame("pong", doc=doc)
        if op == "subscribe":
            return Frame("ack" if doc.get("success", True) else "error", doc=doc, text=str(doc.get("ret_msg", "")))
        topic = doc.get("topic")
        if not isinstance(topic, str):
            return Frame("other", doc=doc)
        name, _, symbol = topic.rpartition(".")
        ms = _int(doc.get("ts"))
        if name == "publicTrade":
            return self._data("trades", symbol, raw, doc, ms)
        if name.startswith("orderbook."):
            data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
            return self._data("books", symbol, raw, doc, _int(doc.get("cts")) or ms, seq=_int(data.get("u")))
        if name in ("allLiquidation", "liquidation", "tickers"):
            return self._data("derivs", symbol, raw, doc, ms)
        return Frame("other", doc=doc)


VENUES: dict[str, type[Venue]] = {"okx": Okx, "binance": Binance, "bybit": Bybit}
