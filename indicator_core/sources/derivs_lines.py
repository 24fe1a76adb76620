"""Derivatives pushes as recorded (SPEC section 17): the lines of a derivs file read into items.

One push per line as received, channels mixed.  Each venue's reader turns a
decoded line into items, a reject reason, or ``None`` (a line of no derivs
channel: a subscription reply, a ticker field we do not read).  Items are
plain tuples (a day holds ~100,000 of them):

* ``("oi", inst, ts, oi, oi_ccy)`` — open interest in contracts (``oi_ccy``: in base where the venue says);
* ``("funding", inst, ts, rate, next_ms, interval_ms)`` — the current funding rate, the next funding time and
  the interval when the push tells it (OKX: ``nextFundingTime - fundingTime``); any of the three may be None
  (a Bybit ``tickers`` delta carries only what changed);
* ``("liq", inst, ts, side, px, sz)`` — a liquidation of a ``side`` (``"long"``/``"short"``) position of
  ``sz`` contracts (the venue's trade size unit) at ``px``; ``("fliq", ...)`` the same of another instrument
  (a feed per instrument type recorded in this folder: ``[derivs] liquidations_from``).

Numbers stay the decimal strings the venue wrote (checked to be plain
decimals); the stream makes them exact values.  ``inst`` is the instrument
the item names: items of other instruments are routed by it, never guessed.

Venues: OKX ``funding-rate``, ``open-interest``, ``liquidation-orders``;
Binance USDⓈ-M ``forceOrder`` and ``markPriceUpdate`` (bare or combined
stream); Bybit v5 ``allLiquidation.{SYMBOL}``, ``liquidation.{SYMBOL}`` and
``tickers.{SYMBOL}``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import orjson

from .. import native
from ..decimal_columns import join_text
from .files import Chunk
from .parsed import Reject, complete_lines
from .timecheck import TimeWindow

_TEXT = 200
_DECIMAL = re.compile(r"-?\d+(\.\d+)?\Z")

Item = tuple


class BadItem(ValueError):
    """A push of a derivs channel that cannot be read (its message is the reject reason)."""


class ParsedDerivs:
    """The items and rejects of a chunk, in line order, with what was not a derivs item counted."""

    __slots__ = ("items", "rejects", "lines", "other_inst", "other_channel", "source", "day_barrier", "day", "columns")

    def __init__(self, source: str = "", day: str = "") -> None:
        self.source = source  # the venue ("okx", "binance", "bybit", "coinalyze")
        # history, not a feed (Coinalyze): its minutes close when a later day's file is read, not by time
        self.day_barrier = False
        self.day = day
        self.items: list[Item] = []
        self.rejects: list[Reject] = []
        self.lines = 0
        self.other_inst = 0  # items naming another instrument (a liquidation feed recorded per instrument type)
        self.other_channel = 0  # lines of no derivs channel (subscription replies, other streams)
        # the compiled reader's items in columns (OkxColumns), beside ``items`` (those of the other lines)
        self.columns: "OkxColumns | None" = None


def dec(value: Any, name: str) -> str:
    """A plain decimal string as the venue wrote it (``"0.0001"``, ``"-12.5"``)."""
    if isinstance(value, str) and _DECIMAL.match(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadItem(f"{name!r} is not a decimal number: {value!r}")


def ms(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadItem(f"{name!r} is not a time in epoch milliseconds: {value!r}")
    try:
        out = int(value)
    except ValueError:
        raise BadItem(f"{name!r} is not a time in epoch milliseconds: {value!r}") from None
    if out <= 0:
        raise BadItem(f"{name!r} is not a time in epoch milliseconds: {value!r}")
    return out


def _opt_ms(value: Any, name: str) -> int | None:
    return None if value in (None, "", 0, "0") else ms(value, name)


# --- OKX -------------------------------------------------------------------------------------------------------

def okx_line(doc: Any) -> list[Item] | str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    arg = doc.get("arg")
    if "event" in doc:  # a subscription reply, an error, a notice
        return None
    if not isinstance(arg, dict):
        return "no \"arg\" (not an OKX push)"
    channel = arg.get("channel")
    data = doc.get("data")
    if channel not in ("funding-rate", "open-interest", "liquidation-orders"):
        return None
    if not isinstance(data, list):
        return f"{channel} push without a \"data\" list"
    out: list[Item] = []
    for item in data:
        inst = item.get("instId") or arg.get("instId")
        if channel == "open-interest":
            out.append(("oi", inst, ms(item.get("ts"), "ts"), dec(item.get("oi"), "oi"),
                        dec(item["oiCcy"], "oiCcy") if item.get("oiCcy") not in (None, "") else None))
        elif channel == "funding-rate":
            if item.get("ts") in (None, ""):
                raise BadItem("funding-rate push without \"ts\" (OKX's shape before 2022): the time it holds for "
                              "is not known")
            rate = item.get("fundingRate")
            funding_time = _opt_ms(item.get("fundingTime"), "fundingTime")
            next_time = _opt_ms(item.get("nextFundingTime"), "nextFundingTime")
            interval = next_time - funding_time if next_time and funding_time and next_time > funding_time else None
            out.append(("funding", inst, ms(item["ts"], "ts"), None if rate in (None, "") else dec(rate, "fundingRate"),
                        funding_time, interval))
        else:
            for d in item.get("details") or ():
                side = d.get("side")
                if side not in ("buy", "sell"):
                    raise BadItem(f"liquidation detail with side {side!r}, expected \"buy\" or \"sell\"")
                # the liquidation order sells a long position, buys back a short one
                out.append(("liq", inst, ms(d.get("ts"), "ts"), "long" if side == "sell" else "short",
                            dec(d.get("bkPx"), "bkPx"), dec(d.get("sz"), "sz")))
    return out


# --- Binance USDⓈ-M ------------------------------------------------------------------------------------------

def binance_line(doc: Any) -> list[Item] | str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    if "stream" in doc and "data" in doc:
        doc = doc["data"]  # a combined stream's wrapper
    if not isinstance(doc, dict):
        return "\"data\" is not a JSON object"
    event = doc.get("e")
    if event == "forceOrder":
        o = doc.get("o")
        if not isinstance(o, dict):
            raise BadItem("forceOrder without its order \"o\"")
        side = o.get("S")
        if side not in ("BUY", "SELL"):
            raise BadItem(f"forceOrder with side {side!r}, expected \"BUY\" or \"SELL\"")
        return [("liq", o.get("s"), ms(o.get("T"), "T"), "long" if side == "SELL" else "short",
                 dec(o.get("ap"), "ap"), dec(o.get("q"), "q"))]
    if event == "markPriceUpdate":
        rate = doc.get("r")
        # a delivery future has no funding: "r" empty and "T" 0
        return [("funding", doc.get("s"), ms(doc.get("E"), "E"), None if rate in (None, "") else dec(rate, "r"),
                 _opt_ms(doc.get("T"), "T"), None)]
    return None


# --- Bybit v5 --------------------------------------------------------------------------------------------------

def bybit_line(doc: Any) -> list[Item] | str | None:
    if not isinstance(doc, dict):
        return "not a JSON object"
    topic = doc.get("topic")
    if not isinstance(topic, str):
        return None if "op" in doc or "success" in doc else "no \"topic\" (not a Bybit v5 push)"
    if topic.startswith("allLiquidation.") or topic.startswith("liquidation."):
        data = doc.get("data")
        rows = data if isinstance(data, list) else [data]
        out: list[Item] = []
        for d in rows:
            if not isinstance(d, dict):
                raise BadItem("a liquidation that is not a JSON object")
            if "v" in d:  # allLiquidation
                sym, side, size, px, ts = d.get("s"), d.get("S"), d.get("v"), d.get("p"), d.get("T")
            elif "updatedTime" in d:  # the older v5 liquidation topic
                sym, side, size, px, ts = d.get("symbol"), d.get("side"), d.get("size"), d.get("price"), d["updatedTime"]
            else:
                raise BadItem("a liquidation of Bybit's 2021 shape (\"qty\", \"time\"): not read, its side "
                              "convention is not documented")
            if side not in ("Buy", "Sell"):
                raise BadItem(f"liquidation with side {side!r}, expected \"Buy\" or \"Sell\"")
            # Bybit: "S" is the side of the liquidated position (Buy: a long position was liquidated)
            out.append(("liq", sym, ms(ts, "T"), "long" if side == "Buy" else "short", dec(px, "p"), dec(size, "v")))
        return out
    if topic.startswith("tickers."):
        data = doc.get("data")
        if not isinstance(data, dict):
            raise BadItem("tickers push without a \"data\" object")
        sym = data.get("symbol")
        ts = ms(doc.get("ts"), "ts")
        out = []
        oi = data.get("openInterest")
        if oi not in (None, ""):
            out.append(("oi", sym, ts, dec(oi, "openInterest"), None))
        rate, next_time = data.get("fundingRate"), data.get("nextFundingTime")
        hours = data.get("fundingIntervalHour")
        interval = int(dec(hours, "fundingIntervalHour")) * 3_600_000 if hours not in (None, "") else None
        if rate not in (None, "") or next_time not in (None, "", "0") or interval is not None:
            out.append(("funding", sym, ts, None if rate in (None, "") else dec(rate, "fundingRate"),
                        _opt_ms(next_time, "nextFundingTime"), interval))
        return out
    return None


# --- Coinalyze history replies --------------------------------------------------------------------------------

COINALYZE_ENDPOINTS = ("open-interest-history", "funding-rate-history", "liquidation-history")
COINALYZE_PREFIX = "coinalyze-"


def coinalyze_endpoint(file_name: str) -> str | None:
    """The endpoint a Coinalyze file holds the replies of, from its name (``coinalyze-{endpoint}_{date}.jsonl``)."""
    if not file_name.startswith(COINALYZE_PREFIX):
        return None
    rest = file_name[len(COINALYZE_PREFIX):]
    return next((e for e in COINALYZE_ENDPOINTS if rest.startswith(e + "_")), None)


def _number(value: Any, name: str) -> str:
    """A JSON number of a reply as exact decimal text (``1e-05`` as ``0.00001``)."""
    if isinstance(value, str) and ("e" in value or "E" in value):
        from decimal import Decimal, InvalidOperation

        try:
            value = format(Decimal(value), "f")
        except InvalidOperation:
            pass
    return dec(value, name)


def coinalyze_line(doc: Any, endpoint: str) -> list[Item] | str | None:
    """One saved reply (``[{"symbol", "history": [...]}]``, numbers kept as written): its points as items
    at the last millisecond of their minute (``t`` is the minute's open, in seconds), values as given.

    Open interest and funding take the minute's close ``c``; a liquidation point gives the minute's
    summed long (``l``) and short (``s``) liquidations: ``("liqsum", inst, ts, l, s)``.  A reply is for
    one symbol: the folder's instrument (the symbol is Coinalyze's own name for it)."""
    if not isinstance(doc, list):
        return "not a Coinalyze history reply (a JSON array of {\"symbol\", \"history\"})"
    if len(doc) > 1:
        return "a reply for several symbols: save each symbol's reply in its instrument's folder"
    out: list[Item] = []
    for entry in doc:
        history = entry.get("history") if isinstance(entry, dict) else None
        if not isinstance(history, list):
            raise BadItem("a reply entry without its \"history\" list")
        for point in history:
            t = point.get("t")
            if not isinstance(t, str) or not t.isdigit():
                raise BadItem(f"a history point whose \"t\" is not seconds: {t!r}")
            ts = int(t) * 1000 + 59_999
            if endpoint == "liquidation-history":
                out.append(("liqsum", None, ts, _number(point.get("l"), "l"), _number(point.get("s"), "s")))
            elif endpoint == "open-interest-history":
                out.append(("oi", None, ts, _number(point.get("c"), "c"), None))
            else:
                out.append(("funding", None, ts, _number(point.get("c"), "c"), None, None))
    return out


def coinalyze_chunk(chunk: Chunk, inst_id: str, window: TimeWindow | None, endpoint: str) -> ParsedDerivs:
    """A chunk of a Coinalyze file: one reply per line; its items are the folder's instrument's."""
    import json

    out = ParsedDerivs("coinalyze", chunk.file.date)
    out.day_barrier = True
    lines = complete_lines(chunk.buf)
    first = chunk.first_line or 1
    for k, raw in enumerate(lines):
        line = raw.rstrip(b"\r")
        if not line.strip():
            out.rejects.append(Reject(first + k, "empty line", ""))
            continue
        try:
            got = coinalyze_line(json.loads(line, parse_float=str, parse_int=str), endpoint)
        except ValueError as exc:  # json's error, BadItem
            got = str(exc) if isinstance(exc, BadItem) else f"not valid JSON ({exc.args[0].split(':')[0]})"
        except (KeyError, TypeError, AttributeError) as exc:
            got = f"not a Coinalyze history reply ({type(exc).__name__}: {exc})"
        if isinstance(got, str):
            out.rejects.append(Reject(first + k, got, raw[:_TEXT].decode(errors="replace")))
            continue
        for item in got or ():
            why = window.reason(item[2]) if window is not None else None
            if why is not None:
                out.rejects.append(Reject(first + k, why, raw[:_TEXT].decode(errors="replace")))
                continue
            out.items.append((item[0], inst_id) + item[2:] + (first + k,))
    out.lines = len(lines)
    return out


def _venue(chunk: Chunk, inst_id: str, window: TimeWindow | None) -> ParsedDerivs | None:
    """A Coinalyze file in any venue's folder (its name says so), read as such; None for the venue's own."""
    endpoint = coinalyze_endpoint(chunk.file.name)
    return None if endpoint is None else coinalyze_chunk(chunk, inst_id, window, endpoint)


# --- the chunk -------------------------------------------------------------------------------------------------

def parse_lines(chunk: Chunk, inst_id: str, window: TimeWindow | None,
                read: Callable[[Any], list[Item] | str | None], source: str) -> ParsedDerivs:
    """A chunk's lines through one venue's reader: the items of ``inst_id`` (others counted), and rejects
    (a line that cannot be read, or an item whose time is outside its file's day: ``window``)."""
    return _read_lines(chunk.buf, chunk.first_line or 1, inst_id, window, read, source)


def _read_lines(buf: bytes, first: int, inst_id: str, window: TimeWindow | None,
                read: Callable[[Any], list[Item] | str | None], source: str) -> ParsedDerivs:
    out = ParsedDerivs(source)
    lines = complete_lines(buf)
    for k, raw in enumerate(lines):
        _line(out, raw, first + k, inst_id, window, read)
    out.lines = len(lines)
    return out


def _line(out: ParsedDerivs, raw: bytes, line_no: int, inst_id: str, window: TimeWindow | None,
          read: Callable[[Any], list[Item] | str | None]) -> None:
    """One line read the reference way (orjson, then the venue's reader) into ``out``."""
    line = raw[:-1] if raw.endswith(b"\r") else raw
    if not line.strip():
        out.rejects.append(Reject(line_no, "empty line", ""))
        return
    try:
        got = read(orjson.loads(line))
    except orjson.JSONDecodeError as exc:
        got = f"not valid JSON ({exc.args[0].split(':')[0]})"
    except BadItem as exc:
        got = str(exc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        got = f"not a derivatives push of this venue ({type(exc).__name__}: {exc})"
    if got is None:
        out.other_channel += 1
    elif isinstance(got, str):
        out.rejects.append(Reject(line_no, got, raw[:_TEXT].decode(errors="replace")))
    else:
        for item in got:
            if item[1] != inst_id:
                out.other_inst += 1
                if item[0] == "liq" and isinstance(item[1], str) and (window is None or window.reason(item[2]) is None):
                    # another instrument's liquidation, in line order: the folder holding a whole feed hands it on
                    out.items.append(("fliq",) + item[1:] + (line_no,))
                continue
            why = window.reason(item[2]) if window is not None else None
            if why is not None:
                out.rejects.append(Reject(line_no, why, raw[:_TEXT].decode(errors="replace")))
                continue
            out.items.append(item + (line_no,))


# The open-interest push as OKX writes it, key for key (one a second: most lines of a derivs day).  A line of
# exactly this shape reads as the reference path reads it; any other line (another channel, another key
# order, a bad value) is one of the `other` group and takes the reference path.
_OKX_OI = re.compile(
    rb'\{"arg":\{"channel":"open-interest","instId":"([A-Za-z0-9_.-]+)"\},"data":\[\{"instId":"\1",'
    rb'"instType":"[A-Z]+","oi":"(\d+(?:\.\d+)?)","oiCcy":"(\d+(?:\.\d+)?)"(?:,"oiUsd":"\d+(?:\.\d+)?")?,'
    rb'"ts":"([1-9]\d{12})"\}\]\}\r?\n'
    rb'|([^\n]*)\n')


class OiRun:
    """Consecutive open-interest pushes of one minute, ``ts`` never going back (what a second-by-second feed
    gives): the stream applies the first and the last, and counts the rest (see ``DerivsStream``).

    ``members()`` gives each push as the reference path's item, for the rare run the stream must take push
    by push (late, or behind an item already applied in its minute)."""

    __slots__ = ("first", "last", "n", "dups", "_members")

    def __init__(self, first: Item, last: Item, n: int, dups: int, members: Callable[[], list[Item]]) -> None:
        self.first, self.last, self.n, self.dups, self._members = first, last, n, dups, members

    def members(self) -> list[Item]:
        return self._members()


def _row_items(rows: list, start: int, end: int, first_line: int) -> list[Item]:
    return [("oi", inst.decode(), int(ts), oi.decode(), ccy.decode(), first_line + k - start)
            for k, (inst, oi, ccy, ts, _) in enumerate(rows[start:end], start)]


_KERNEL = native.load("derivs")  # the compiled scan of the open-interest lines (None: the regular expression)


def okx_fast(chunk: Chunk, inst_id: str, window: TimeWindow | None) -> ParsedDerivs:
    """:func:`parse_lines` with OKX's reader, in bulk.

    With the compiled kernel (``_native_derivs.c``) one C pass over the chunk reads every channel into rows
    (:func:`_okx_kernel`: ``ParsedDerivs.columns``, summed up by the stream in numpy).  Without it, one
    regular expression matches the open-interest lines of OKX's own shape and numpy finds which rows
    continue a run (this instrument, the same minute, ``ts`` not going back, the row before in the run too)
    and which repeat the row before: they become :class:`OiRun` items, every other line is read the
    reference way."""
    buf = bytes(chunk.buf)
    if _KERNEL is not None:
        return _okx_kernel(buf, chunk, inst_id, window)
    out = ParsedDerivs("okx")
    rows = _OKX_OI.findall(buf)
    n = len(rows)
    out.lines = n
    if not n:
        return out
    first = chunk.first_line or 1
    inst_b = inst_id.encode()
    mine = np.fromiter((r[0] == inst_b for r in rows), dtype=bool, count=n)
    ts_text = np.array([r[3] or b"0" for r in rows], dtype="S13")
    ts = ts_text.astype(np.int64)
    if window is not None and mine.any():
        t = ts[mine]
        if t.min() < window.lo or t.max() >= window.hi:  # rare: the reference path, whose rejects quote the line
            return parse_lines(chunk, inst_id, window, okx_line, "okx")
    minute = ts // 60_000
    values = np.array([r[1] + b"/" + r[2] for r in rows])  # oi and oiCcy of each row, compared as one text
    cont = np.zeros(n, dtype=bool)
    cont[1:] = mine[1:] & mine[:-1] & (minute[1:] == minute[:-1]) & (ts[1:] >= ts[:-1])
    dup = np.zeros(n, dtype=bool)
    dup[1:] = cont[1:] & (ts[1:] == ts[:-1]) & (values[1:] == values[:-1])
    other = np.fromiter((not r[0] for r in rows), dtype=bool, count=n)
    out.other_inst = int(n - mine.sum() - other.sum())
    starts = np.flatnonzero((mine & ~cont) | other)  # a run's first row, or a line of another kind
    ends = np.append(starts[1:], n)
    dups = np.add.reduceat(dup, starts) if len(starts) else np.zeros(0, dtype=np.int64)
    items = out.items
    for s, e, d in zip(starts.tolist(), ends.tolist(), dups.tolist()):
        row = rows[s]
        if not row[0]:
            _line(out, row[4], first + s, inst_id, window, okx_line)
            continue
        e = s + 1 + int(np.argmin(cont[s + 1:e])) if e - s > 1 and not cont[s + 1:e].all() else e
        last = rows[e - 1]
        items.append(OiRun(("oi", inst_id, int(ts[s]), row[1].decode(), row[2].decode(), first + s),
                           ("oi", inst_id, int(ts[e - 1]), last[1].decode(), last[2].decode(), first + e - 1),
                           e - s, d, lambda s=s, e=e: _row_items(rows, s, e, first + s)))
    return out


# The kernel's rows (``_native_derivs.scan_okx``): 16 int64 each, in line order.
R_OI, R_FUNDING, R_LIQ, R_OTHER = 0, 1, 2, 3
COL_KIND, COL_LINE, COL_LINE_LAST, COL_A, COL_B, COL_T0, COL_T1 = 0, 1, 2, 3, 4, 5, 6
# R_OI:      A = pushes, B = repeats; 7-10 the first push's oi and oiCcy (mantissa, scale), 11-14 the last's
# R_FUNDING: 7-8 fundingRate (scale -1: none), 9 fundingTime, 11 nextFundingTime (0: none)
# R_LIQ:     A = 1 for this instrument, B = 1 where a long was liquidated (side "sell"), 7-8 bkPx, 9-10 sz
# R_OTHER:   A, B = the line's start and end in the chunk (read the reference way)


def _okx_kernel(buf: bytes, chunk: Chunk, inst_id: str, window: TimeWindow | None) -> ParsedDerivs:
    """:func:`okx_fast` through the compiled kernel: the items of every OKX derivs channel as columns
    (``ParsedDerivs.columns``, which the stream sums up in bulk); the other lines read the reference way."""
    out = ParsedDerivs("okx")
    inst = inst_id.encode()
    prefix = (b'{"arg":{"channel":"open-interest","instId":"%s"},"data":[{"instId":"%s","instType":"' % (inst, inst))
    funding = b'{"arg":{"channel":"funding-rate","instId":"%s"},"data":[' % inst
    raw, out.lines = _KERNEL.scan_okx(buf, prefix, funding, inst)
    rows = np.frombuffer(raw, dtype=np.int64).reshape(-1, 16)
    first = chunk.first_line or 1
    kind = rows[:, COL_KIND]
    mine = (kind == R_OI) | (kind == R_FUNDING) | ((kind == R_LIQ) & (rows[:, COL_A] == 1))
    if window is not None and mine.any():
        if rows[mine, COL_T0].min() < window.lo or rows[mine, COL_T1].max() >= window.hi:
            return parse_lines(chunk, inst_id, window, okx_line, "okx")  # rare: its rejects quote the line
    is_other = kind == R_OTHER
    out.other_inst = int(((kind == R_LIQ) & (rows[:, COL_A] == 0)).sum())  # other instruments' liquidations
    other = rows[is_other]
    if len(other):
        # lines of no kernel layout: their rejects and counts, and any items they hold (then the stream takes
        # the whole chunk item by item, in line order)
        for k, start, end in other[:, [COL_LINE, COL_A, COL_B]].tolist():
            _line(out, buf[start:end], first + k, inst_id, window, okx_line)
    out.columns = OkxColumns(rows[~is_other] if len(other) else rows, first, buf, inst_id, window)
    return out


class OkxColumns:
    """The kernel's rows of a chunk's items (this instrument's, and other instruments' liquidations), with what
    turns them back into the reference path's items (:meth:`items`)."""

    __slots__ = ("rows", "first_line", "buf", "inst_id", "window")

    def __init__(self, rows: np.ndarray, first_line: int, buf: bytes, inst_id: str, window: TimeWindow | None) -> None:
        self.rows, self.first_line, self.buf, self.inst_id, self.window = rows, first_line, buf, inst_id, window

    def subset(self, rows: np.ndarray) -> "OkxColumns":
        return OkxColumns(rows, self.first_line, self.buf, self.inst_id, self.window)

    def reference(self, parsed: "ParsedDerivs", foreign_items: bool) -> "ParsedDerivs":
        """``parsed`` (what the kernel read) as the reference path gives it: its items one by one, in line order;
        with ``foreign_items`` where other instruments' liquidations are in it, the chunk read the reference way
        (they are items then: the stream hands them on)."""
        if foreign_items and ((self.rows[:, COL_KIND] == R_LIQ) & (self.rows[:, COL_A] == 0)).any():
            return _read_lines(self.buf, self.first_line, self.inst_id, self.window, okx_line, "okx")
        parsed.items = self.items(parsed.items)
        parsed.columns = None
        return parsed

    def items(self, other: list[Item]) -> list[Item]:
        """This instrument's items as the reference path gives them, merged with ``other`` (the items of the
        lines read the reference way) in line order; other instruments' liquidations are left out (the
        stream only counts them unless it keeps them: then it reads the chunk the reference way)."""
        first, inst = self.first_line, self.inst_id
        lines: list[bytes] = []

        def members(a: int, z: int) -> list[Item]:
            if not lines:
                lines.extend(complete_lines(self.buf))
            found = _OKX_OI.findall(b"\n".join(lines[a:z + 1]) + b"\n")
            return _row_items(found, 0, len(found), first + a)

        out: list[tuple[int, Any]] = []
        for r in self.rows.tolist():
            kind, k, z, a, b, t0, t1 = r[:7]
            if kind == R_OI:
                out.append((k, OiRun(("oi", inst, t0, join_text(r[7], r[8]), join_text(r[9], r[10]), first + k),
                                     ("oi", inst, t1, join_text(r[11], r[12]), join_text(r[13], r[14]), first + z),
                                     a, b, lambda k=k, z=z: members(k, z))))
            elif kind == R_FUNDING:
                ft, nft = r[9] or None, r[11] or None
                interval = nft - ft if nft and ft and nft > ft else None
                out.append((k, ("funding", inst, t0, None if r[8] < 0 else join_text(r[7], r[8]), ft, interval,
                                first + k)))
            elif a == 1:
                out.append((k, ("liq", inst, t0, "long" if b else "short", join_text(r[7], r[8]),
                                join_text(r[9], r[10]), first + k)))
        if other:
            out += [(item[-1] - first, item) for item in other]
            out.sort(key=lambda x: x[0])  # stable: a line's items keep their order
        return [item for _, item in out]


def okx_chunk(chunk: Chunk, inst_id: str, window: TimeWindow | None = None) -> ParsedDerivs:
    return _venue(chunk, inst_id, window) or okx_fast(chunk, inst_id, window)


def binance_chunk(chunk: Chunk, inst_id: str, window: TimeWindow | None = None) -> ParsedDerivs:
    return _venue(chunk, inst_id, window) or parse_lines(chunk, inst_id, window, binance_line, "binance")


def bybit_chunk(chunk: Chunk, inst_id: str, window: TimeWindow | None = None) -> ParsedDerivs:
    return _venue(chunk, inst_id, window) or parse_lines(chunk, inst_id, window, bybit_line, "bybit")
