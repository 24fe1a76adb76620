"""The compiled fast path for OKX JSON lines (numba).

The kernel scans a chunk of complete lines once and writes the trade columns
directly.  It only accepts the common, canonical line: one flat JSON object
of string values (any key order, optional spaces, extra string fields
ignored, no escapes) holding a valid trade of the expected instrument.  Every
other line — a WebSocket push, a number where a string was expected, an
escape, a bad or missing field, an empty line, a BOM, a ``\\r`` — is marked
and parsed by the reference parser (:mod:`okx_jsonl`), and its results are
put back in line order.  Both paths therefore agree on every input; the tests
check that on generated and real lines.
"""

from __future__ import annotations

import numpy as np

from . import okx_jsonl
from .parsed import ColumnBuilder, ParsedChunk

try:
    import numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    numba = None

MAX_DIGITS = 18  # an int64 holds every 18-digit mantissa



def _lit(buf, p, end, lit):  # pragma: no cover - compiled
    """Whether the bytes at ``p`` are ``lit``."""
    k = len(lit)
    if p + k > end:
        return False
    for j in range(k):
        if buf[p + j] != lit[j]:
            return False
    return True


def _digits(buf, p, end, decimal):  # pragma: no cover - compiled
    """Digits (with one optional point if ``decimal``) up to a quote: (ok, end, mantissa, scale).

    Not ok when there are none, more than 18, a point with no digit after it, or a zero value.
    """
    m = 0
    digits = 0
    scale = 0
    dot = False
    while p < end:
        c = buf[p]
        if 48 <= c <= 57:
            m = m * 10 + (c - 48)
            digits += 1
            if dot:
                scale += 1
        elif c == 46 and decimal and not dot:
            dot = True
        elif c == 34:
            break
        else:
            return False, p, 0, 0
        p += 1
    if p >= end or digits == 0 or digits > MAX_DIGITS or (dot and scale == 0) or m == 0:
        return False, p, 0, 0
    return True, p, m, scale


def _canonical(buf, p, end, prefix, l_px, l_sz, l_side, l_ts, l_tail):  # pragma: no cover - compiled
    """The exporter's exact layout, field by field; (ok, next line start, values...)."""
    bad = (False, p, 0, 0, 1, False, 0, 0, 0, 0)
    if not _lit(buf, p, end, prefix):
        return bad
    p += len(prefix)
    ok, p, tid, _ = _digits(buf, p, end, False)
    if not ok or not _lit(buf, p, end, l_px):
        return bad
    p += len(l_px)
    ok, p, pxm, pxs = _digits(buf, p, end, True)
    if not ok or not _lit(buf, p, end, l_sz):
        return bad
    p += len(l_sz)
    ok, p, szm, szs = _digits(buf, p, end, True)
    if not ok or not _lit(buf, p, end, l_side):
        return bad
    p += len(l_side)
    if p + 4 <= end and buf[p] == 98 and buf[p + 1] == 117 and buf[p + 2] == 121 and buf[p + 3] == 34:
        is_buy = True
        p += 3
    elif p + 5 <= end and buf[p] == 115 and buf[p + 1] == 101 and buf[p + 2] == 108 and buf[p + 3] == 108 and buf[p + 4] == 34:
        is_buy = False
        p += 4
    else:
        return bad
    if not _lit(buf, p, end, l_ts):
        return bad
    p += len(l_ts)
    ok, p, ts, _ = _digits(buf, p, end, False)
    if not ok or not _lit(buf, p, end, l_tail):
        return bad
    p += len(l_tail)
    return True, p, ts, tid, 1, is_buy, pxm, pxs, szm, szs


def _kernel(buf, inst, ts, tid, cnt, buy, pxm, pxs, szm, szs, slow, prefix, l_px, l_sz, l_side, l_ts, l_tail):  # pragma: no cover - compiled
    n = len(buf)
    line = 0
    start = 0
    ilen = len(inst)
    while start < n:
        # the exporter's own layout first: one pass, no key lookups
        c_ok, c_next, c_ts, c_tid, c_cnt, c_buy, c_pxm, c_pxs, c_szm, c_szs = _canonical(
            buf, start, n, prefix, l_px, l_sz, l_side, l_ts, l_tail)
        if c_ok:
            ts[line] = c_ts
            tid[line] = c_tid
            cnt[line] = c_cnt
            buy[line] = c_buy
            pxm[line] = c_pxm
            pxs[line] = c_pxs
            szm[line] = c_szm
            szs[line] = c_szs
            slow[line] = False
            line += 1
            start = c_next
            continue
        end = start
        while end < n and buf[end] != 10:
            end += 1
        ok = True
        seen = 0
        v_ts = 0
        v_tid = 0
        v_cnt = 1
        v_buy = False
        v_pxm = 0
        v_pxs = 0
        v_szm = 0
        v_szs = 0
        p = start
        if p >= end or buf[p] != 123:  # '{'
            ok = False
        p += 1
        while ok:
            while p < end and (buf[p] == 32 or buf[p] == 9):
                p += 1
            if p >= end or buf[p] != 34:  # '"' opens a key
                ok = False
                break
            p += 1
            ks = p
            while p < end and buf[p] != 34 and buf[p] != 92 and 32 <= buf[p] < 128:
                p += 1
            if p >= end or buf[p] != 34:
                ok = False
                break
            ke = p
            p += 1
            while p < end and (buf[p] == 32 or buf[p] == 9):
                p += 1
            if p >= end or buf[p] != 58:  # ':'
                ok = False
                break
            p += 1
            while p < end and (buf[p] == 32 or buf[p] == 9):
                p += 1
            if p >= end or buf[p] != 34:  # only string values on the fast path
                ok = False
                break
            p += 1
            vs = p
            while p < end and buf[p] != 34 and buf[p] != 92 and 32 <= buf[p] < 128:
                p += 1
            if p >= end or buf[p] != 34:
                ok = False
                break
            ve = p
            p += 1
            # which key?
            kl = ke - ks
            key = 0
            if kl == 6 and buf[ks] == 105 and buf[ks + 1] == 110 and buf[ks + 2] == 115 and buf[ks + 3] == 116 and buf[ks + 4] == 73 and buf[ks + 5] == 100:
                key = 1  # instId
            elif kl == 7 and buf[ks] == 116 and buf[ks + 1] == 114 and buf[ks + 2] == 97 and buf[ks + 3] == 100 and buf[ks + 4] == 101 and buf[ks + 5] == 73 and buf[ks + 6] == 100:
                key = 2  # tradeId
            elif kl == 2 and buf[ks] == 112 and buf[ks + 1] == 120:
                key = 3  # px
            elif kl == 2 and buf[ks] == 115 and buf[ks + 1] == 122:
                key = 4  # sz
            elif kl == 4 and buf[ks] == 115 and buf[ks + 1] == 105 and buf[ks + 2] == 100 and buf[ks + 3] == 101:
                key = 5  # side
            elif kl == 2 and buf[ks] == 116 and buf[ks + 1] == 115:
                key = 6  # ts
            elif kl == 5 and buf[ks] == 99 and buf[ks + 1] == 111 and buf[ks + 2] == 117 and buf[ks + 3] == 110 and buf[ks + 4] == 116:
                key = 7  # count
            else:
                # other keys must not repeat a known key in another spelling; they are ignored
                key = 0
            if key != 0:
                bit = 1 << key
                if seen & bit:
                    ok = False  # a repeated key: orjson keeps the last one; leave it to the reference
                    break
                seen |= bit
                vl = ve - vs
                if key == 1:
                    if vl != ilen:
                        ok = False
                        break
                    for j in range(vl):
                        if buf[vs + j] != inst[j]:
                            ok = False
                            break
                    if not ok:
                        break
                elif key == 2 or key == 6 or key == 7:
                    ok, q, v, _ = _digits(buf, vs, end, False)
                    if not ok or q != ve:
                        ok = False
                        break
                    if key == 2:
                        v_tid = v
                    elif key == 6:
                        v_ts = v
                    else:
                        v_cnt = v
                elif key == 3 or key == 4:
                    ok, q, m, scale = _digits(buf, vs, end, True)
                    if not ok or q != ve:
                        ok = False
                        break
                    if key == 3:
                        v_pxm = m
                        v_pxs = scale
                    else:
                        v_szm = m
                        v_szs = scale
                elif key == 5:
                    if vl == 3 and buf[vs] == 98 and buf[vs + 1] == 117 and buf[vs + 2] == 121:
                        v_buy = True
                    elif vl == 4 and buf[vs] == 115 and buf[vs + 1] == 101 and buf[vs + 2] == 108 and buf[vs + 3] == 108:
                        v_buy = False
                    else:
                        ok = False
                        break
            while p < end and (buf[p] == 32 or buf[p] == 9):
                p += 1
            if p < end and buf[p] == 44:  # ','
                p += 1
                continue
            if p < end and buf[p] == 125:  # '}'
                p += 1
                while p < end and (buf[p] == 32 or buf[p] == 9):
                    p += 1
                if p != end:
                    ok = False
                break
            ok = False
        required = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6)
        if ok and (seen & required) == required:
            ts[line] = v_ts
            tid[line] = v_tid
            cnt[line] = v_cnt
            buy[line] = v_buy
            pxm[line] = v_pxm
            pxs[line] = v_pxs
            szm[line] = v_szm
            szs[line] = v_szs
            slow[line] = False
        else:
            slow[line] = True
        line += 1
        start = end + 1
    return line


if numba is not None:
    _jit = numba.njit(cache=True, nogil=True, boundscheck=False)
    _lit = _jit(_lit)
    _digits = _jit(_digits)
    _canonical = _jit(_canonical)
    _compiled = _jit(_kernel)
else:  # pragma: no cover
    _compiled = None


def _bytes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8)


_LITERALS = tuple(_bytes(t) for t in ('","px":"', '","sz":"', '","side":"', '","ts":"', '"}\n'))

AVAILABLE = _compiled is not None


def parse_chunk_fast(buf: bytes, first_line_no: int, inst_id: str, n_lines: int | None = None) -> ParsedChunk:
    """Same result as :func:`okx_jsonl.parse_chunk`, compiled for the canonical lines.

    ``n_lines`` is the number of lines in ``buf`` when the caller already counted them.
    """
    if _compiled is None:
        return okx_jsonl.parse_chunk(buf, first_line_no, inst_id)
    data = np.frombuffer(buf, dtype=np.uint8)
    if n_lines is None:
        n_lines = buf.count(b"\n") + (0 if buf.endswith(b"\n") or not buf else 1)
    ts = np.empty(n_lines, np.int64)
    tid = np.empty(n_lines, np.int64)
    cnt = np.empty(n_lines, np.int64)
    buy = np.empty(n_lines, np.bool_)
    pxm = np.empty(n_lines, np.int64)
    pxs = np.empty(n_lines, np.int64)
    szm = np.empty(n_lines, np.int64)
    szs = np.empty(n_lines, np.int64)
    slow = np.empty(n_lines, np.bool_)
    inst = _bytes(inst_id)
    prefix = _bytes('{"instId":"' + inst_id + '","tradeId":"')
    lines = _compiled(data, inst, ts, tid, cnt, buy, pxm, pxs, szm, szs, slow, prefix, *_LITERALS)
    cols = [ts[:lines], tid[:lines], cnt[:lines], buy[:lines], pxm[:lines], pxs[:lines], szm[:lines], szs[:lines]]
    slow = slow[:lines]
    slow_idx = np.flatnonzero(slow)
    if len(slow_idx) == 0:
        return ParsedChunk(*cols, rejects=[], lines=lines)
    # re-parse the marked lines with the reference parser and splice them in, in line order
    raw_lines = buf.split(b"\n")
    pieces: list[list[np.ndarray]] = []
    rejects = []
    prev = 0
    for i in slow_idx.tolist():
        if i > prev:
            pieces.append([c[prev:i] for c in cols])
        one = ColumnBuilder()
        okx_jsonl.parse_line(one, raw_lines[i], first_line_no + i, inst_id)
        part = one.build(1)
        pieces.append([part.ts, part.trade_id, part.count, part.is_buy, part.px_m, part.px_s, part.sz_m, part.sz_s])
        rejects.extend(part.rejects)
        prev = i + 1
    if prev < lines:
        pieces.append([c[prev:lines] for c in cols])
    merged = []
    for k in range(8):
        parts = [p[k] for p in pieces]
        if any(a.dtype == object for a in parts):
            parts = [a.astype(object) for a in parts]
        merged.append(np.concatenate(parts) if parts else cols[k][:0])
    return ParsedChunk(*merged, rejects=rejects, lines=lines)


def warm_up() -> None:
    """Compile (or load from the on-disk cache) before timing anything."""
    parse_chunk_fast(b'{"instId":"A","tradeId":"1","px":"1","sz":"1","side":"buy","ts":"1"}\n', 1, "A")
