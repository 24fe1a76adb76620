/* The compiled kernel of the order-book stream (see indicator_core/streams/books.py and book.py).
 *
 * The per-push work, each giving exactly what the pure path gives:
 *
 * - parse_lines(buf, pos, prefix, line_no, Push, n): parse for the next n lines of a chunk,
 *   without a bytes object per line read here.
 * - parse(line, prefix, line_no, Push): a push line in OKX's own layout (what
 *   books._shape's regex accepts, and a little stricter) read into a Push without
 *   orjson or the regex; None for any other line, which the pure path then reads
 *   (so this kernel may decline a line the regex accepts, never accept one it
 *   refuses, and a declined line is read exactly as before).
 * - update(side, rows): book.Side.update on the side's own lists and dicts (the
 *   same Decimal keys, pieces and first-25 bookkeeping); False, before changing
 *   anything, when a row is not [str, str, ...] (the pure path then runs).
 * - apply(book, bids, asks, checksum): book.Book.apply and BookStream's checks after it
 *   (the checksum when non-zero, then the crossed test) in one call, for the common push.
 * - decimals(side, start, n): book.Side.decimals, a slice of levels at a time.
 * - checksum(bids, asks) and crc32(parts): OKX's signed CRC-32 of the pieces interleaved
 *   (or joined) with ":", without building the joined string in Python.
 *
 * Only the plain CPython C API is used.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_INT_DIGITS 18 /* every 18-digit integer fits an int64 */
#define MAX_EXTRAS 8      /* the most extra strings of a level read here ("0", "1" in OKX's books) */
#define CHECKSUM_LEVELS 25

/* ---------------------------------------------------------------------------------------
 * CRC-32 (zlib's polynomial), slice-by-8
 */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xFF] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

/* the running (pre-inverted) crc over n more bytes */
static uint32_t crc_update(uint32_t c, const unsigned char *p, Py_ssize_t n) {
    while (n >= 8) {
        uint32_t a = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t b = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_table[7][a & 0xFF] ^ crc_table[6][(a >> 8) & 0xFF] ^ crc_table[5][(a >> 16) & 0xFF] ^
            crc_table[4][a >> 24] ^ crc_table[3][b & 0xFF] ^ crc_table[2][(b >> 8) & 0xFF] ^
            crc_table[1][(b >> 16) & 0xFF] ^ crc_table[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c;
}

static const char crc32_doc[] =
    "crc32(parts) -> int: the CRC-32 of ':'.join(parts) in UTF-8, as a signed 32-bit integer.";

static PyObject *crc32(PyObject *self, PyObject *arg) {
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "crc32 expects a list of str");
        return NULL;
    }
    uint32_t c = 0xFFFFFFFFu;
    Py_ssize_t n = PyList_GET_SIZE(arg);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyList_GET_ITEM(arg, i);
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "crc32 expects a list of str");
            return NULL;
        }
        Py_ssize_t len;
        const char *u = PyUnicode_AsUTF8AndSize(s, &len);
        if (u == NULL) return NULL;
        if (i) c = crc_update(c, (const unsigned char *)":", 1);
        c = crc_update(c, (const unsigned char *)u, len);
    }
    c ^= 0xFFFFFFFFu;
    return PyLong_FromLongLong(c >= 0x80000000u ? (long long)c - 0x100000000LL : (long long)c);
}

static const char checksum_doc[] =
    "checksum(bids, asks) -> int: crc32 of the pieces interleaved (bid1, ask1, bid2, ask2, ..., the longer side\n"
    "continuing alone), as book._crc(bids, asks).";

/* the crc of two lists of str interleaved; -1 on error */
static int crc_lists(PyObject *b, PyObject *a, long long *out) {
    Py_ssize_t nb = PyList_GET_SIZE(b), na = PyList_GET_SIZE(a), n = nb > na ? nb : na;
    /* the joined text is built in a buffer (on the stack while it fits) and hashed in one go */
    char stack[4096], *buf = stack, *heap = NULL;
    Py_ssize_t cap = (Py_ssize_t)sizeof(stack), len = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int side = 0; side < 2; side++) {
            PyObject *l = side ? a : b;
            if (i >= PyList_GET_SIZE(l)) continue;
            PyObject *s = PyList_GET_ITEM(l, i);
            if (!PyUnicode_Check(s)) {
                PyErr_SetString(PyExc_TypeError, "checksum expects lists of str");
                goto fail;
            }
            Py_ssize_t k;
            const char *u = PyUnicode_AsUTF8AndSize(s, &k);
            if (u == NULL) goto fail;
            if (len + k + 1 > cap) {
                Py_ssize_t want = 2 * (len + k + 1);
                char *grown = PyMem_Realloc(heap, (size_t)want);
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto fail;
                }
                if (heap == NULL) memcpy(grown, stack, (size_t)len);
                heap = buf = grown;
                cap = want;
            }
            if (len) buf[len++] = ':';
            memcpy(buf + len, u, (size_t)k);
            len += k;
        }
    }
    uint32_t c = crc_update(0xFFFFFFFFu, (const unsigned char *)buf, len) ^ 0xFFFFFFFFu;
    PyMem_Free(heap);
    *out = c >= 0x80000000u ? (long long)c - 0x100000000LL : (long long)c;
    return 0;
fail:
    PyMem_Free(heap);
    return -1;
}

static PyObject *checksum(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "checksum(bids: list[str], asks: list[str])");
        return NULL;
    }
    long long crc;
    if (crc_lists(args[0], args[1], &crc) < 0) return NULL;
    return PyLong_FromLongLong(crc);
}

/* ---------------------------------------------------------------------------------------
 * parse: one push line in OKX's layout
 */

/* an ASCII str of n bytes (the caller checked they are ASCII) */
static PyObject *ascii_str(const char *p, Py_ssize_t n) {
    if (n == 1) return PyUnicode_FromStringAndSize(p, 1); /* "0", "1", "5": CPython's shared one-character str */
    PyObject *s = PyUnicode_New(n, 127);
    if (s != NULL) memcpy(PyUnicode_DATA(s), p, (size_t)n);
    return s;
}

static int lit(const char **pp, const char *end, const char *text, Py_ssize_t n) {
    if (end - *pp < n || memcmp(*pp, text, (size_t)n) != 0) return 0;
    *pp += n;
    return 1;
}
#define LIT(pp, end, s) lit(pp, end, s, (Py_ssize_t)(sizeof(s) - 1))

/* A plain decimal "5", "0.5", ".5" (as _NUM); *nonzero is set when a digit 1-9 occurs. NULL when not. */
static const char *scan_num(const char *p, const char *end, int *nonzero) {
    const char *s = p;
    int nz = 0;
    while (p < end && (unsigned char)(*p - '0') <= 9) nz |= *p++ != '0';
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && (unsigned char)(*p - '0') <= 9) nz |= *p++ != '0';
        if (p == f) return NULL; /* "5." */
    } else if (p == s) {
        return NULL;
    }
    *nonzero = nz;
    return p;
}

/* A JSON integer -?[0-9]+ of at most 18 digits, without a leading zero or "-0". 0 when not. */
static int scan_int(const char **pp, const char *end, long long *out) {
    const char *p = *pp;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    const char *s = p;
    long long v = 0;
    while (p < end && (unsigned char)(*p - '0') <= 9 && p - s < MAX_INT_DIGITS) v = v * 10 + (*p++ - '0');
    Py_ssize_t n = p - s;
    if (p < end && (unsigned char)(*p - '0') <= 9) return 0; /* a 19th digit: declined, before any overflow */
    if (n < 1 || (*s == '0' && (n > 1 || neg))) return 0;
    *out = neg ? -v : v;
    *pp = p;
    return 1;
}

/* The levels array at *pp: a new list of lists [px, sz, extra...], or NULL (exception set or not: declined). */
static PyObject *scan_levels(const char **pp, const char *end) {
    const char *p = *pp;
    if (p >= end || *p != '[') return NULL;
    p++;
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    if (p < end && *p == ']') {
        *pp = p + 1;
        return out;
    }
    for (;;) {
        const char *spans[2 + MAX_EXTRAS];
        Py_ssize_t lens[2 + MAX_EXTRAS];
        int nz, k = 0;
        if (!LIT(&p, end, "[\"")) goto decline;
        const char *q = scan_num(p, end, &nz);
        if (q == NULL || !nz) goto decline; /* a price must be above 0 */
        spans[k] = p;
        lens[k++] = q - p;
        p = q;
        if (!LIT(&p, end, "\",\"")) goto decline;
        q = scan_num(p, end, &nz);
        if (q == NULL) goto decline;
        spans[k] = p;
        lens[k++] = q - p;
        p = q;
        if (!LIT(&p, end, "\"")) goto decline;
        while (p < end && *p == ',') {
            if (k == 2 + MAX_EXTRAS || !LIT(&p, end, ",\"")) goto decline;
            const char *s = p;
            while (p < end && *p != '"') {
                unsigned char c = (unsigned char)*p;
                if (c < 0x20 || c > 0x7E || c == '\\') goto decline; /* orjson's business: the pure path */
                p++;
            }
            if (p >= end) goto decline;
            spans[k] = s;
            lens[k++] = p - s;
            p++;
        }
        if (!LIT(&p, end, "]")) goto decline;
        PyObject *lv = PyList_New(k);
        if (lv == NULL) goto fail;
        for (int i = 0; i < k; i++) {
            PyObject *s = ascii_str(spans[i], lens[i]);
            if (s == NULL) {
                Py_DECREF(lv);
                goto fail;
            }
            PyList_SET_ITEM(lv, i, s);
        }
        int rc = PyList_Append(out, lv);
        Py_DECREF(lv);
        if (rc < 0) goto fail;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (!LIT(&p, end, "]")) goto decline;
        *pp = p;
        return out;
    }
decline:
fail:
    Py_DECREF(out);
    return NULL;
}

static const char parse_doc[] =
    "parse(line, prefix, line_no, Push) -> Push | None: a push line in OKX's own layout, or None for the pure path.\n"
    "\n"
    "prefix is b'{\"arg\":{\"channel\":\"<channel>\",\"instId\":\"<inst>\"},\"action\":\"'.";

/* The Push of the line p..end, or NULL: declined (no exception set) or an error (exception set). */
static PyObject *read_push(const char *p, const char *end, const char *prefix, Py_ssize_t np, PyObject *line_no,
                           PyObject *push_type) {
    if (end - p < np || memcmp(p, prefix, (size_t)np) != 0) return NULL;
    p += np;
    int snapshot;
    if (LIT(&p, end, "snapshot")) {
        snapshot = 1;
    } else if (LIT(&p, end, "update")) {
        snapshot = 0;
    } else {
        return NULL;
    }
    if (!LIT(&p, end, "\",\"data\":[{\"asks\":")) return NULL;
    PyObject *asks = scan_levels(&p, end), *bids = NULL, *res = NULL;
    if (asks == NULL) goto done;
    if (!LIT(&p, end, ",\"bids\":")) goto done;
    bids = scan_levels(&p, end);
    if (bids == NULL) goto done;
    if (!LIT(&p, end, ",\"ts\":\"")) goto done;
    const char *s = p;
    long long ts = 0, checksum, prev = 0, seq = 0;
    while (p < end && (unsigned char)(*p - '0') <= 9 && p - s < MAX_INT_DIGITS) ts = ts * 10 + (*p++ - '0');
    if (p == s || (p < end && (unsigned char)(*p - '0') <= 9)) goto done; /* none, or a 19th digit */
    if (!LIT(&p, end, "\",\"checksum\":") || !scan_int(&p, end, &checksum)) goto done;
    int chain = 0;
    if (LIT(&p, end, ",\"prevSeqId\":")) {
        if (!scan_int(&p, end, &prev) || !LIT(&p, end, ",\"seqId\":") || !scan_int(&p, end, &seq)) goto done;
        chain = 1;
    }
    if (!LIT(&p, end, "}]}")) goto done;
    if (p < end && *p == '\r') p++;
    if (p != end) goto done;
    {
        PyObject *a[8] = {line_no, snapshot ? Py_True : Py_False, NULL, bids, asks, NULL, NULL, NULL};
        a[2] = PyLong_FromLongLong(ts);
        a[5] = PyLong_FromLongLong(checksum);
        if (chain) {
            a[6] = PyLong_FromLongLong(seq);
            a[7] = PyLong_FromLongLong(prev);
        } else {
            a[6] = Py_NewRef(Py_None);
            a[7] = Py_NewRef(Py_None);
        }
        if (a[2] != NULL && a[5] != NULL && a[6] != NULL && a[7] != NULL) res = PyObject_Vectorcall(push_type, a, 8, NULL);
        Py_XDECREF(a[2]);
        Py_XDECREF(a[5]);
        Py_XDECREF(a[6]);
        Py_XDECREF(a[7]);
    }
done:
    Py_XDECREF(asks);
    Py_XDECREF(bids);
    return res;
}

static PyObject *parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "parse(line: bytes, prefix: bytes, line_no: int, Push)");
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(args[0]);
    PyObject *res = read_push(p, p + PyBytes_GET_SIZE(args[0]), PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]),
                              args[2], args[3]);
    if (res == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return res;
}

static const char parse_lines_doc[] =
    "parse_lines(buf, pos, prefix, line_no, Push, n) -> (items, pos, line_no): the next n lines (at most) of buf\n"
    "from byte pos, the first numbered line_no; an item is the line's Push, or (line_no, line) for a line\n"
    "the pure path reads.  Only lines ended by \\n are read.";

static PyObject *parse_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t pos, n;
    long long line_no;
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[2]) || (pos = PyLong_AsSsize_t(args[1])) < 0 ||
        (line_no = PyLong_AsLongLong(args[3])) < 0 || (n = PyLong_AsSsize_t(args[5])) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "parse_lines(buf: bytes, pos: int, prefix: bytes, line_no: int, Push, n)");
        return NULL;
    }
    const char *base = PyBytes_AS_STRING(args[0]), *stop = base + PyBytes_GET_SIZE(args[0]);
    const char *prefix = PyBytes_AS_STRING(args[2]);
    Py_ssize_t np = PyBytes_GET_SIZE(args[2]);
    PyObject *items = PyList_New(0);
    if (items == NULL) return NULL;
    const char *p = base + (pos < stop - base ? pos : stop - base);
    for (Py_ssize_t k = 0; k < n && p < stop; k++) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        if (nl == NULL) break;
        PyObject *no = PyLong_FromLongLong(line_no), *item = NULL;
        if (no == NULL) goto fail;
        item = read_push(p, nl, prefix, np, no, args[4]);
        if (item == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(no);
                goto fail;
            }
            PyObject *line = PyBytes_FromStringAndSize(p, nl - p);
            item = line == NULL ? NULL : PyTuple_Pack(2, no, line);
            Py_XDECREF(line);
        }
        Py_DECREF(no);
        if (item == NULL) goto fail;
        int bad = PyList_Append(items, item);
        Py_DECREF(item);
        if (bad) goto fail;
        line_no++;
        p = nl + 1;
    }
    return Py_BuildValue("(NnL)", items, (Py_ssize_t)(p - base), line_no);
fail:
    Py_DECREF(items);
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * update: book.Side.update
 */
static PyObject *Decimal; /* decimal.Decimal */
static PyObject *s_asks, *s_crc, *s_bids, *s_keys, *s_levels, *s_by_text, *s_top, *s_parts, *s_off, *s_changed;

/* Decimal(px), or -Decimal(px) for bids: the same key object for the same text while it is in the cache, so
 * its hash (costly for a Decimal, cached in the object) is computed once.  Each cache is cleared when full, so
 * it never holds more than KEY_CACHE texts. */
#define KEY_CACHE 4096
static PyObject *key_cache[2];

static PyObject *key_of(PyObject *px, int bids) {
    PyObject *cache = key_cache[bids != 0];
    PyObject *key = PyDict_GetItemWithError(cache, px);
    if (key != NULL) return Py_NewRef(key);
    if (PyErr_Occurred()) return NULL;
    key = PyObject_CallOneArg(Decimal, px);
    if (key == NULL) return NULL;
    if (bids) {
        Py_SETREF(key, PyNumber_Negative(key));
        if (key == NULL) return NULL;
    }
    if (PyDict_GET_SIZE(cache) >= KEY_CACHE) PyDict_Clear(cache);
    if (PyDict_SetItem(cache, px, key) < 0) {
        Py_DECREF(key);
        return NULL;
    }
    return key;
}

/* not sz.strip("0."): every character is "0" or "." */
static int is_zero(PyObject *sz) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(sz);
    int kind = PyUnicode_KIND(sz);
    const void *d = PyUnicode_DATA(sz);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, d, i);
        if (c != '0' && c != '.') return 0;
    }
    return 1;
}

/* bisect.bisect_left(keys, key); -1 on error */
static Py_ssize_t bisect_left(PyObject *keys, PyObject *key) {
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(keys);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        PyObject *k = PyList_GET_ITEM(keys, mid);
        Py_INCREF(k);
        int lt = PyObject_RichCompareBool(k, key, Py_LT);
        Py_DECREF(k);
        if (lt < 0) return -1;
        if (lt) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* f"{px}:{sz}" */
static PyObject *piece_of(PyObject *px, PyObject *sz) {
    if (PyUnicode_IS_ASCII(px) && PyUnicode_IS_ASCII(sz)) {
        Py_ssize_t a = PyUnicode_GET_LENGTH(px), b = PyUnicode_GET_LENGTH(sz);
        PyObject *s = PyUnicode_New(a + b + 1, 127);
        if (s == NULL) return NULL;
        char *d = (char *)PyUnicode_DATA(s);
        memcpy(d, PyUnicode_DATA(px), (size_t)a);
        d[a] = ':';
        memcpy(d + a + 1, PyUnicode_DATA(sz), (size_t)b);
        return s;
    }
    return PyUnicode_FromFormat("%U:%U", px, sz);
}

typedef struct {
    PyObject *side, *keys, *levels, *by_text, *top; /* top: NULL when not tracked */
    Py_ssize_t off;
} SideRefs;

static int set_changed(SideRefs *r, int drop_parts) {
    if (drop_parts && PyObject_SetAttr(r->side, s_parts, Py_None) < 0) return -1;
    return PyObject_SetAttr(r->side, s_changed, Py_True);
}

/* *edge = keys[24] when there are 25 keys, else NULL (new reference) */
static void set_edge(SideRefs *r, PyObject **edge) {
    PyObject *e = PyList_GET_SIZE(r->keys) >= CHECKSUM_LEVELS ? PyList_GET_ITEM(r->keys, CHECKSUM_LEVELS - 1) : NULL;
    Py_XINCREF(e);
    Py_XSETREF(*edge, e);
}

/* Side._remove: delete the level at key (its price text already forgotten) */
static int remove_level(SideRefs *r, PyObject *key, PyObject **edge) {
    if (PyDict_DelItem(r->levels, key) < 0) return -1;
    Py_ssize_t i = bisect_left(r->keys, key);
    if (i < 0 || PyList_SetSlice(r->keys, i, i + 1, NULL) < 0) return -1;
    if (r->top == NULL || i >= CHECKSUM_LEVELS) return 0;
    if (PyList_SetSlice(r->top, i, i + 1, NULL) < 0) return -1;
    if (PyList_GET_SIZE(r->keys) >= CHECKSUM_LEVELS) {
        PyObject *pc = PyDict_GetItemWithError(r->levels, PyList_GET_ITEM(r->keys, CHECKSUM_LEVELS - 1));
        if (pc == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "a key without its level");
            return -1;
        }
        if (PyList_Append(r->top, pc) < 0) return -1;
    }
    if (set_changed(r, 1) < 0) return -1;
    set_edge(r, edge);
    return 0;
}

/* one row [px, sz]; -1 on error */
static int update_one(SideRefs *r, int bids, PyObject *px, PyObject *sz, PyObject **edge) {
    PyObject *key = PyDict_GetItemWithError(r->by_text, px), *piece = NULL;
    int rc = -1;
    if (key == NULL) {
        if (PyErr_Occurred()) return -1;
        key = key_of(px, bids);
        if (key == NULL) return -1;
        PyObject *old = PyDict_GetItemWithError(r->levels, key); /* the same price written another way */
        if (old == NULL && PyErr_Occurred()) goto out;
        if (old != NULL) {
            Py_INCREF(old);
            Py_ssize_t colon = PyUnicode_FindChar(old, ':', 0, PyUnicode_GET_LENGTH(old), 1);
            PyObject *oldpx = colon < 0 ? (Py_INCREF(old), old) : PyUnicode_Substring(old, 0, colon);
            int bad = oldpx == NULL || PyDict_DelItem(r->by_text, oldpx) < 0;
            Py_XDECREF(oldpx);
            if (bad) {
                Py_DECREF(old);
                goto out;
            }
        }
        if (is_zero(sz)) {
            rc = old != NULL ? remove_level(r, key, edge) : 0;
            Py_XDECREF(old);
            goto out;
        }
        if (PyDict_SetItem(r->by_text, px, key) < 0 || (piece = piece_of(px, sz)) == NULL ||
            PyDict_SetItem(r->levels, key, piece) < 0) {
            Py_XDECREF(old);
            goto out;
        }
        if (old == NULL) {
            Py_ssize_t i = bisect_left(r->keys, key);
            if (i < 0 || PyList_Insert(r->keys, i, key) < 0) goto out;
            if (r->top != NULL) {
                if (i < CHECKSUM_LEVELS) {
                    if (PyList_Insert(r->top, i, piece) < 0) goto out;
                    Py_ssize_t nt = PyList_GET_SIZE(r->top);
                    if (nt > CHECKSUM_LEVELS && PyList_SetSlice(r->top, nt - 1, nt, NULL) < 0) goto out;
                    if (set_changed(r, 1) < 0) goto out;
                }
                set_edge(r, edge);
            }
            rc = 0;
            goto out;
        }
        Py_DECREF(old);
    } else {
        Py_INCREF(key);
        if (is_zero(sz)) {
            if (PyDict_DelItem(r->by_text, px) < 0) goto out;
            rc = remove_level(r, key, edge);
            goto out;
        }
        piece = piece_of(px, sz);
        if (piece == NULL || PyDict_SetItem(r->levels, key, piece) < 0) goto out;
    }
    /* a new size at a held level: its piece among the first 25 is replaced in place */
    if (r->top != NULL) {
        int within = 1;
        if (*edge != NULL) {
            within = PyObject_RichCompareBool(key, *edge, Py_LE);
            if (within < 0) goto out;
        }
        if (within) {
            Py_ssize_t i = bisect_left(r->keys, key);
            if (i < 0) goto out;
            Py_INCREF(piece);
            if (PyList_SetItem(r->top, i, piece) < 0) goto out;
            PyObject *parts = PyObject_GetAttr(r->side, s_parts);
            if (parts == NULL) goto out;
            if (parts != Py_None) {
                PyObject *off = PyObject_GetAttr(r->side, s_off);
                Py_ssize_t o = off == NULL ? -1 : PyLong_AsSsize_t(off);
                Py_XDECREF(off);
                if (o < 0) {
                    Py_DECREF(parts);
                    goto out;
                }
                Py_INCREF(piece);
                int bad = PyList_SetItem(parts, 2 * i + o, piece) < 0;
                Py_DECREF(parts);
                if (bad) goto out;
            } else {
                Py_DECREF(parts);
            }
            if (set_changed(r, 0) < 0) goto out;
        }
    }
    rc = 0;
out:
    Py_XDECREF(piece);
    Py_DECREF(key);
    return rc;
}

/* row i as (px, sz) borrowed; 0 when it is not a list or tuple of two or more str */
static int row_texts(PyObject *rows, Py_ssize_t i, PyObject **px, PyObject **sz) {
    PyObject *lv = PySequence_Fast_GET_ITEM(rows, i);
    if (PyList_CheckExact(lv)) {
        if (PyList_GET_SIZE(lv) < 2) return 0;
        *px = PyList_GET_ITEM(lv, 0);
        *sz = PyList_GET_ITEM(lv, 1);
    } else if (PyTuple_CheckExact(lv)) {
        if (PyTuple_GET_SIZE(lv) < 2) return 0;
        *px = PyTuple_GET_ITEM(lv, 0);
        *sz = PyTuple_GET_ITEM(lv, 1);
    } else {
        return 0;
    }
    return PyUnicode_CheckExact(*px) && PyUnicode_CheckExact(*sz);
}

static const char update_doc[] =
    "update(side, rows) -> bool: book.Side.update(rows) done here; False (nothing changed) when a row is not\n"
    "[str, str, ...] (a list or tuple), for the pure path to handle.";

/* 1 when every row is [str, str, ...] (a list or tuple) in a list or tuple of rows */
static int rows_ok(PyObject *rows) {
    if (!PyList_CheckExact(rows) && !PyTuple_CheckExact(rows)) return 0;
    PyObject *px, *sz;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(rows);
    for (Py_ssize_t i = 0; i < n; i++)
        if (!row_texts(rows, i, &px, &sz)) return 0;
    return 1;
}

/* Side.update(rows) on rows that passed rows_ok; -1 on error */
static int update_side(PyObject *side, PyObject *rows) {
    SideRefs r = {side, NULL, NULL, NULL, NULL, 0};
    PyObject *bids_obj = NULL, *top = NULL, *edge = NULL, *px = NULL, *sz = NULL;
    int res = -1;
    if ((bids_obj = PyObject_GetAttr(r.side, s_bids)) == NULL || (r.keys = PyObject_GetAttr(r.side, s_keys)) == NULL ||
        (r.levels = PyObject_GetAttr(r.side, s_levels)) == NULL ||
        (r.by_text = PyObject_GetAttr(r.side, s_by_text)) == NULL || (top = PyObject_GetAttr(r.side, s_top)) == NULL)
        goto done;
    if (!PyList_CheckExact(r.keys) || !PyDict_CheckExact(r.levels) || !PyDict_CheckExact(r.by_text) ||
        (top != Py_None && !PyList_CheckExact(top))) {
        PyErr_SetString(PyExc_TypeError, "update: not a book side");
        goto done;
    }
    int bids = PyObject_IsTrue(bids_obj);
    if (bids < 0) goto done;
    r.top = top == Py_None ? NULL : top;
    if (r.top != NULL) set_edge(&r, &edge);
    Py_ssize_t n = PySequence_Fast_GET_SIZE(rows);
    for (Py_ssize_t i = 0; i < n; i++) {
        row_texts(rows, i, &px, &sz);
        Py_INCREF(px);
        Py_INCREF(sz);
        int rc = update_one(&r, bids, px, sz, &edge);
        Py_DECREF(px);
        Py_DECREF(sz);
        if (rc < 0) goto done;
    }
    res = 0;
done:
    Py_XDECREF(edge);
    Py_XDECREF(top);
    Py_XDECREF(r.by_text);
    Py_XDECREF(r.levels);
    Py_XDECREF(r.keys);
    Py_XDECREF(bids_obj);
    return res;
}

static PyObject *update(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "update(side, rows)");
        return NULL;
    }
    if (!rows_ok(args[1])) Py_RETURN_FALSE;
    if (update_side(args[0], args[1]) < 0) return NULL;
    Py_RETURN_TRUE;
}

/* Side.joined(): the side's first 25 pieces, made from its keys when not kept (new reference) */
static PyObject *joined(PyObject *side) {
    PyObject *top = PyObject_GetAttr(side, s_top);
    if (top == NULL || top != Py_None) return top;
    Py_DECREF(top);
    PyObject *keys = PyObject_GetAttr(side, s_keys), *levels = PyObject_GetAttr(side, s_levels);
    if (keys == NULL || levels == NULL || !PyList_Check(keys) || !PyDict_Check(levels)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "not a book side");
        goto fail;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys) < CHECKSUM_LEVELS ? PyList_GET_SIZE(keys) : CHECKSUM_LEVELS;
    top = PyList_New(n);
    if (top == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pc = PyDict_GetItemWithError(levels, PyList_GET_ITEM(keys, i));
        if (pc == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "a key without its level");
            Py_DECREF(top);
            goto fail;
        }
        PyList_SET_ITEM(top, i, Py_NewRef(pc));
    }
    Py_DECREF(keys);
    Py_DECREF(levels);
    if (PyObject_SetAttr(side, s_top, top) < 0) {
        Py_DECREF(top);
        return NULL;
    }
    return top;
fail:
    Py_XDECREF(keys);
    Py_XDECREF(levels);
    return NULL;
}

/* Book.checksum() on the kernel's path: the kept crc while neither side changed; -1 on error */
static int book_checksum(PyObject *book, PyObject *bside, PyObject *aside, long long *out) {
    PyObject *crc = PyObject_GetAttr(book, s_crc);
    if (crc == NULL) return -1;
    int stale = crc == Py_None;
    for (int k = 0; !stale && k < 2; k++) {
        PyObject *ch = PyObject_GetAttr(k ? aside : bside, s_changed);
        if (ch == NULL) {
            Py_DECREF(crc);
            return -1;
        }
        stale = PyObject_IsTrue(ch);
        Py_DECREF(ch);
        if (stale < 0) {
            Py_DECREF(crc);
            return -1;
        }
    }
    if (!stale) {
        *out = PyLong_AsLongLong(crc);
        Py_DECREF(crc);
        return *out == -1 && PyErr_Occurred() ? -1 : 0;
    }
    Py_DECREF(crc);
    PyObject *bt = joined(bside), *at = bt == NULL ? NULL : joined(aside), *value = NULL;
    int res = -1;
    if (at == NULL || !PyList_Check(bt) || !PyList_Check(at)) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "not a book side");
        goto done;
    }
    if (crc_lists(bt, at, out) < 0 || (value = PyLong_FromLongLong(*out)) == NULL) goto done;
    if (PyObject_SetAttr(book, s_crc, value) < 0 || PyObject_SetAttr(bside, s_changed, Py_False) < 0 ||
        PyObject_SetAttr(aside, s_changed, Py_False) < 0)
        goto done;
    res = 0;
done:
    Py_XDECREF(value);
    Py_XDECREF(bt);
    Py_XDECREF(at);
    return res;
}

static const char apply_doc[] =
    "apply(book, bids, asks, checksum) -> int | None: book.apply(bids, asks), then the checks of BookStream:\n"
    "1 when checksum is non-zero and not the book's, else 2 when the book is crossed, else 0.  None (nothing\n"
    "changed) when a row is not [str, str, ...], for the pure path to handle.";

static PyObject *apply(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyLong_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "apply(book, bids, asks, checksum: int)");
        return NULL;
    }
    PyObject *book = args[0], *bids = args[1], *asks = args[2];
    if (!rows_ok(bids) || !rows_ok(asks)) Py_RETURN_NONE;
    PyObject *bside = PyObject_GetAttr(book, s_bids), *aside = bside == NULL ? NULL : PyObject_GetAttr(book, s_asks);
    PyObject *bk = NULL, *ak = NULL, *neg = NULL, *res = NULL;
    if (aside == NULL) goto done;
    if ((PySequence_Fast_GET_SIZE(bids) && update_side(bside, bids) < 0) ||
        (PySequence_Fast_GET_SIZE(asks) && update_side(aside, asks) < 0))
        goto done;
    int code = 0;
    int has_ck = PyObject_IsTrue(args[3]);
    if (has_ck) {
        long long crc;
        if (book_checksum(book, bside, aside, &crc) < 0) goto done;
        int overflow;
        long long want = PyLong_AsLongLongAndOverflow(args[3], &overflow);
        if (want == -1 && PyErr_Occurred()) goto done;
        if (overflow || want != crc) code = 1;
    }
    if (!code) {
        if ((bk = PyObject_GetAttr(bside, s_keys)) == NULL || (ak = PyObject_GetAttr(aside, s_keys)) == NULL) goto done;
        if (!PyList_Check(bk) || !PyList_Check(ak)) {
            PyErr_SetString(PyExc_TypeError, "not a book side");
            goto done;
        }
        if (PyList_GET_SIZE(bk) && PyList_GET_SIZE(ak)) { /* -bids[0] >= asks[0] */
            if ((neg = PyNumber_Negative(PyList_GET_ITEM(bk, 0))) == NULL) goto done;
            int crossed = PyObject_RichCompareBool(neg, PyList_GET_ITEM(ak, 0), Py_GE);
            if (crossed < 0) goto done;
            if (crossed) code = 2;
        }
    }
    res = PyLong_FromLong(code);
done:
    Py_XDECREF(neg);
    Py_XDECREF(bk);
    Py_XDECREF(ak);
    Py_XDECREF(bside);
    Py_XDECREF(aside);
    return res;
}

/* piece "px:sz" -> (key, (price, size)), by side (bids: 1); cleared when full */
#define PAIR_CACHE 4096
static PyObject *pair_cache[2];

static const char decimals_doc[] =
    "decimals(side, start, n) -> list: (price, size) as exact decimals of the side's levels start..start+n-1, best\n"
    "first (book.Side.decimals, a slice at a time).";

static PyObject *decimals(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t start, n;
    if (nargs != 3 || (start = PyLong_AsSsize_t(args[1])) < 0 || (n = PyLong_AsSsize_t(args[2])) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "decimals(side, start: int >= 0, n: int >= 0)");
        return NULL;
    }
    PyObject *side = args[0], *bids_obj = PyObject_GetAttr(side, s_bids), *keys = NULL, *levels = NULL, *out = NULL;
    if (bids_obj == NULL || (keys = PyObject_GetAttr(side, s_keys)) == NULL ||
        (levels = PyObject_GetAttr(side, s_levels)) == NULL)
        goto done;
    if (!PyList_Check(keys) || !PyDict_Check(levels)) {
        PyErr_SetString(PyExc_TypeError, "not a book side");
        goto done;
    }
    int bids = PyObject_IsTrue(bids_obj);
    if (bids < 0) goto done;
    Py_ssize_t end = PyList_GET_SIZE(keys);
    if (start > end) start = end;
    if (end - start > n) end = start + n;
    if ((out = PyList_New(end - start)) == NULL) goto done;
    PyObject *cache = pair_cache[bids != 0];
    for (Py_ssize_t i = start; i < end; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        PyObject *piece = PyDict_GetItemWithError(levels, k);
        if (piece == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "a key without its level");
            Py_CLEAR(out);
            goto done;
        }
        /* the pair of a piece "px:sz" at this very key object: made once while it is in the cache (the key
         * object is checked, not only the text: "100.0:1" may sit at the key of "100", whose price is 100) */
        PyObject *hit = PyDict_GetItemWithError(cache, piece), *pair;
        if (hit != NULL && PyTuple_GET_ITEM(hit, 0) == k) {
            PyList_SET_ITEM(out, i - start, Py_NewRef(PyTuple_GET_ITEM(hit, 1)));
            continue;
        }
        if (hit == NULL && PyErr_Occurred()) {
            Py_CLEAR(out);
            goto done;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(piece);
        Py_ssize_t colon = PyUnicode_FindChar(piece, ':', 0, len, 1);
        PyObject *sz_text = colon < 0 ? PyUnicode_New(0, 127) /* "".partition(":")[2] */
                                      : PyUnicode_Substring(piece, colon + 1, len);
        PyObject *size = sz_text == NULL ? NULL : PyObject_CallOneArg(Decimal, sz_text);
        Py_XDECREF(sz_text);
        PyObject *price = size == NULL ? NULL : bids ? PyNumber_Negative(k) : Py_NewRef(k);
        if (price == NULL) {
            Py_XDECREF(size);
            Py_CLEAR(out);
            goto done;
        }
        pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(size);
            Py_DECREF(price);
            Py_CLEAR(out);
            goto done;
        }
        PyTuple_SET_ITEM(pair, 0, price);
        PyTuple_SET_ITEM(pair, 1, size);
        PyList_SET_ITEM(out, i - start, pair);
        if (PyDict_GET_SIZE(cache) >= PAIR_CACHE) PyDict_Clear(cache);
        PyObject *entry = PyTuple_Pack(2, k, pair);
        int bad = entry == NULL || PyDict_SetItem(cache, piece, entry) < 0;
        Py_XDECREF(entry);
        if (bad) {
            Py_CLEAR(out);
            goto done;
        }
    }
done:
    Py_XDECREF(bids_obj);
    Py_XDECREF(keys);
    Py_XDECREF(levels);
    return out;
}

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))parse, METH_FASTCALL, parse_doc},
    {"parse_lines", (PyCFunction)(void (*)(void))parse_lines, METH_FASTCALL, parse_lines_doc},
    {"update", (PyCFunction)(void (*)(void))update, METH_FASTCALL, update_doc},
    {"apply", (PyCFunction)(void (*)(void))apply, METH_FASTCALL, apply_doc},
    {"decimals", (PyCFunction)(void (*)(void))decimals, METH_FASTCALL, decimals_doc},
    {"crc32", crc32, METH_O, crc32_doc},
    {"checksum", (PyCFunction)(void (*)(void))checksum, METH_FASTCALL, checksum_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "indicator_core._native_books",
    "The compiled kernel of the order-book stream (optional; the pure path gives the same results).", -1, methods,
};

PyMODINIT_FUNC PyInit__native_books(void) {
    crc_init();
    PyObject *dec = PyImport_ImportModule("decimal");
    if (dec == NULL) return NULL;
    Decimal = PyObject_GetAttrString(dec, "Decimal");
    Py_DECREF(dec);
    if (Decimal == NULL) return NULL;
    if ((key_cache[0] = PyDict_New()) == NULL || (key_cache[1] = PyDict_New()) == NULL) return NULL;
    if ((pair_cache[0] = PyDict_New()) == NULL || (pair_cache[1] = PyDict_New()) == NULL) return NULL;
    if ((s_bids = PyUnicode_InternFromString("bids")) == NULL || (s_keys = PyUnicode_InternFromString("keys")) == NULL ||
        (s_levels = PyUnicode_InternFromString("levels")) == NULL ||
        (s_by_text = PyUnicode_InternFromString("by_text")) == NULL ||
        (s_top = PyUnicode_InternFromString("top")) == NULL || (s_parts = PyUnicode_InternFromString("parts")) == NULL ||
        (s_off = PyUnicode_InternFromString("off")) == NULL ||
        (s_changed = PyUnicode_InternFromString("changed")) == NULL ||
        (s_asks = PyUnicode_InternFromString("asks")) == NULL || (s_crc = PyUnicode_InternFromString("crc")) == NULL)
        return NULL;
    return PyModule_Create(&module);
}
