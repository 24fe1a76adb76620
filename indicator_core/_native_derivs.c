/* The compiled kernel of the derivatives reader (see indicator_core/sources/derivs_lines.py).
 *
 * - scan_okx(buf, oi_prefix, funding_prefix, inst) -> (rows, lines): the lines of a chunk in order as rows
 *   of 16 int64 (the layout is documented beside derivs_lines.R_OI .. R_OTHER):
 *     open-interest pushes of OKX's own layout folded into runs (consecutive pushes of one minute, ts never
 *     going back; the first and the last push's values, how many, how many repeat the one before),
 *     funding-rate items of the instrument, liquidation details of every instrument (whether of this one),
 *     and every other line as its offsets, for the reference path.
 *   A line is read here only when it is exactly what the reference path would read the same way: flat
 *   objects of string values without escapes, no key twice, plain decimals without a leading zero (or
 *   "-0", whose text would not come back from the mantissa), at most 18 digits; anything else is handed
 *   back whole, so the kernel and the pure path read every line alike (tested).
 *
 * Only the plain CPython C API is used.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* a plain decimal: digits, then optionally '.' and digits; the end of it, or NULL */
static const char *decimal_end(const char *p, const char *end) {
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    if (p == s) return NULL;
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == f) return NULL;
    }
    return p;
}

static int literal(const char **pp, const char *end, const char *text, Py_ssize_t n) {
    if (end - *pp < n || memcmp(*pp, text, (size_t)n) != 0) return 0;
    *pp += n;
    return 1;
}

#define LIT(p, end, s) literal(&(p), (end), (s), (Py_ssize_t)(sizeof(s) - 1))

typedef struct {
    long long ts;
    const char *oi, *ccy;
    Py_ssize_t noi, nccy;
} Row;

/* an open-interest push line [p, end) (its \r, if any, already off) read into row; 0 if it is not one */
static int read_row(const char *p, const char *end, const char *prefix, Py_ssize_t np, Row *row) {
    if (end - p < np || memcmp(p, prefix, (size_t)np) != 0) return 0;
    p += np;
    const char *s = p;
    while (p < end && *p >= 'A' && *p <= 'Z') p++;
    if (p == s) return 0;
    if (!LIT(p, end, "\",\"oi\":\"")) return 0;
    row->oi = p;
    if ((p = decimal_end(p, end)) == NULL) return 0;
    row->noi = p - row->oi;
    if (!LIT(p, end, "\",\"oiCcy\":\"")) return 0;
    row->ccy = p;
    if ((p = decimal_end(p, end)) == NULL) return 0;
    row->nccy = p - row->ccy;
    if (LIT(p, end, "\",\"oiUsd\":\"")) {
        if ((p = decimal_end(p, end)) == NULL) return 0;
    }
    if (!LIT(p, end, "\",\"ts\":\"")) return 0;
    if (end - p < 13 || *p < '1' || *p > '9') return 0;
    long long ts = 0;
    for (int k = 0; k < 13; k++) {
        if (p[k] < '0' || p[k] > '9') return 0;
        ts = ts * 10 + (p[k] - '0');
    }
    p += 13;
    if (!LIT(p, end, "\"}]}")) return 0;
    if (p != end) return 0;
    row->ts = ts;
    return 1;
}

static int same(const Row *a, const Row *b) {
    return a->ts == b->ts && a->noi == b->noi && a->nccy == b->nccy && memcmp(a->oi, b->oi, (size_t)a->noi) == 0 &&
           memcmp(a->ccy, b->ccy, (size_t)a->nccy) == 0;
}

/* --- scan_okx: every OKX derivs channel in columns ------------------------------------------------------------ */

#define COLS 16
enum { R_OI = 0, R_FUNDING = 1, R_LIQ = 2, R_OTHER = 3 };

typedef struct {
    int64_t *v;
    Py_ssize_t n, cap;
} Rows;

static int64_t *new_row(Rows *r) {
    if (r->n == r->cap) {
        Py_ssize_t cap = r->cap ? r->cap * 2 : 1024;
        /* the raw allocator: the scan runs without the GIL (the caller raises MemoryError) */
        int64_t *v = PyMem_RawRealloc(r->v, (size_t)cap * COLS * sizeof(int64_t));
        if (v == NULL) return NULL;
        r->v = v;
        r->cap = cap;
    }
    int64_t *row = r->v + r->n++ * COLS;
    memset(row, 0, COLS * sizeof(int64_t));
    return row;
}

/* a plain decimal as (mantissa, scale): optional '-' where signed, digits with no leading zero (but "0" and
 * "0.x"), optionally '.' and digits; at most 18 digits; "-0" refused (its text would not come back) */
static int parse_decimal(const char *p, Py_ssize_t n, int signed_ok, int64_t *m, int64_t *s) {
    int neg = 0;
    if (n && *p == '-') {
        if (!signed_ok) return 0;
        neg = 1; p++; n--;
    }
    if (n == 0 || *p < '0' || *p > '9') return 0;
    if (*p == '0' && n > 1 && p[1] != '.') return 0;
    int64_t v = 0;
    int digits = 0, scale = 0, dot = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            if (dot || i == 0 || i == n - 1) return 0;
            dot = 1;
            continue;
        }
        if (c < '0' || c > '9') return 0;
        if (++digits > 18) return 0;
        v = v * 10 + (c - '0');
        scale += dot;
    }
    if (neg && v == 0) return 0;
    *m = neg ? -v : v;
    *s = scale;
    return 1;
}

/* epoch milliseconds: digits, no leading zero, at most 18 */
static int parse_ms(const char *p, Py_ssize_t n, int64_t *out) {
    if (n == 0 || n > 18 || *p == '0') return 0;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

#define MAX_PAIRS 32
typedef struct {
    const char *key[MAX_PAIRS], *val[MAX_PAIRS];
    Py_ssize_t nkey[MAX_PAIRS], nval[MAX_PAIRS];
    int n;
    const char *arr; /* the "details" array's '[' where allowed */
    const char *arr_end; /* just past its ']' */
} Pairs;

/* a JSON string without escapes at *pp ('"' ... '"'); its text span */
static int string_at(const char **pp, const char *end, const char **s, Py_ssize_t *n) {
    const char *p = *pp;
    if (p >= end || *p != '"') return 0;
    const char *q = ++p;
    while (q < end && *q != '"') {
        if (*q == '\\' || (unsigned char)*q < 0x20) return 0;
        q++;
    }
    if (q >= end) return 0;
    *s = p;
    *n = q - p;
    *pp = q + 1;
    return 1;
}

/* a flat object {"k":"v",...} (no spaces, no escapes; with details: a "details":[...] of such objects is
 * skipped over and noted); no key twice */
static int object_at(const char **pp, const char *end, Pairs *o, int details) {
    const char *p = *pp;
    o->n = 0;
    o->arr = o->arr_end = NULL;
    if (p >= end || *p != '{') return 0;
    p++;
    if (p < end && *p == '}') { *pp = p + 1; return 1; }
    for (;;) {
        const char *k;
        Py_ssize_t nk;
        if (!string_at(&p, end, &k, &nk)) return 0;
        if (p >= end || *p++ != ':') return 0;
        if (details && nk == 7 && memcmp(k, "details", 7) == 0 && p < end && *p == '[') {
            if (o->arr != NULL) return 0;
            o->arr = p;
            p++;
            if (p < end && *p == ']') p++;
            else {
                for (;;) {
                    Pairs skip;
                    if (!object_at(&p, end, &skip, 0)) return 0;
                    if (p < end && *p == ',') { p++; continue; }
                    if (p < end && *p == ']') { p++; break; }
                    return 0;
                }
            }
            o->arr_end = p;
        } else {
            if (o->n == MAX_PAIRS) return 0;
            for (int j = 0; j < o->n; j++)
                if (o->nkey[j] == nk && memcmp(o->key[j], k, (size_t)nk) == 0) return 0;
            o->key[o->n] = k;
            o->nkey[o->n] = nk;
            if (!string_at(&p, end, &o->val[o->n], &o->nval[o->n])) return 0;
            o->n++;
        }
        if (p < end && *p == ',') { p++; continue; }
        if (p < end && *p == '}') { p++; break; }
        return 0;
    }
    *pp = p;
    return 1;
}

/* the value of key (NULL: absent) */
static const char *get(const Pairs *o, const char *key, Py_ssize_t *n) {
    Py_ssize_t nk = (Py_ssize_t)strlen(key);
    for (int j = 0; j < o->n; j++)
        if (o->nkey[j] == nk && memcmp(o->key[j], key, (size_t)nk) == 0) { *n = o->nval[j]; return o->val[j]; }
    return NULL;
}

/* an optional time: absent, "" or "0" is 0 */
static int opt_ms(const Pairs *o, const char *key, int64_t *out) {
    Py_ssize_t n;
    const char *v = get(o, key, &n);
    *out = 0;
    if (v == NULL || n == 0 || (n == 1 && *v == '0')) return 1;
    return parse_ms(v, n, out);
}

/* a funding-rate push of this instrument [p, end), every item read; 0 if it is not one (its rows dropped) */
static int funding_line(const char *p, const char *end, const char *prefix, Py_ssize_t np, const char *inst,
                        Py_ssize_t ninst, Rows *rows, Py_ssize_t k) {
    if (end - p < np || memcmp(p, prefix, (size_t)np) != 0) return 0;
    p += np;
    Py_ssize_t mark = rows->n;
    for (;;) {
        Pairs o;
        if (!object_at(&p, end, &o, 0)) goto no;
        Py_ssize_t n;
        const char *v = get(&o, "instId", &n);
        if (v != NULL && (n != ninst || memcmp(v, inst, (size_t)n) != 0)) goto no;
        int64_t ts, ft, nft, rm = 0, rs = -1;
        v = get(&o, "ts", &n);
        if (v == NULL || !parse_ms(v, n, &ts)) goto no;
        v = get(&o, "fundingRate", &n);
        if (v != NULL && n && !parse_decimal(v, n, 1, &rm, &rs)) goto no;
        if (!opt_ms(&o, "fundingTime", &ft) || !opt_ms(&o, "nextFundingTime", &nft)) goto no;
        int64_t *row = new_row(rows);
        if (row == NULL) return -1;
        row[0] = R_FUNDING; row[1] = row[2] = k; row[5] = row[6] = ts;
        row[7] = rm; row[8] = rs; row[9] = ft; row[11] = nft;
        if (p < end && *p == ',') { p++; continue; }
        break;
    }
    if (end - p == 2 && p[0] == ']' && p[1] == '}') return 1;
no:
    rows->n = mark;
    return 0;
}

/* a liquidation-orders push [p, end), every detail of every instrument read; 0 if it is not one */
static int liquidation_line(const char *p, const char *end, const char *inst, Py_ssize_t ninst, Rows *rows,
                            Py_ssize_t k) {
    static const char head[] = "{\"arg\":{\"channel\":\"liquidation-orders\",\"instType\":\"";
    if (!LIT(p, end, head)) return 0;
    const char *s = p;
    while (p < end && *p >= 'A' && *p <= 'Z') p++;
    if (p == s || !LIT(p, end, "\"},\"data\":[")) return 0;
    Py_ssize_t mark = rows->n;
    for (;;) {
        Pairs o;
        if (!object_at(&p, end, &o, 1)) goto no;
        Py_ssize_t n;
        const char *id = get(&o, "instId", &n);
        if (id == NULL || n == 0) goto no;
        int mine = n == ninst && memcmp(id, inst, (size_t)n) == 0;
        if (o.arr != NULL && o.arr[1] != ']') {
            const char *q = o.arr + 1;
            for (;;) {
                Pairs d;
                if (!object_at(&q, o.arr_end, &d, 0)) goto no;
                const char *side = get(&d, "side", &n);
                int sell;
                if (side != NULL && n == 4 && memcmp(side, "sell", 4) == 0) sell = 1;
                else if (side != NULL && n == 3 && memcmp(side, "buy", 3) == 0) sell = 0;
                else goto no;
                int64_t ts, pm, ps, sm, ss;
                const char *v = get(&d, "ts", &n);
                if (v == NULL || !parse_ms(v, n, &ts)) goto no;
                v = get(&d, "bkPx", &n);
                if (v == NULL || !parse_decimal(v, n, 0, &pm, &ps)) goto no;
                v = get(&d, "sz", &n);
                if (v == NULL || !parse_decimal(v, n, 0, &sm, &ss)) goto no;
                int64_t *row = new_row(rows);
                if (row == NULL) return -1;
                /* the liquidation order sells a long position, buys back a short one */
                row[0] = R_LIQ; row[1] = row[2] = k; row[3] = mine; row[4] = sell; row[5] = row[6] = ts;
                row[7] = pm; row[8] = ps; row[9] = sm; row[10] = ss;
                if (q < o.arr_end && *q == ',') { q++; continue; }
                break;
            }
        }
        if (p < end && *p == ',') { p++; continue; }
        break;
    }
    if (end - p == 2 && p[0] == ']' && p[1] == '}') return 1;
no:
    rows->n = mark;
    return 0;
}

static int run_row(Rows *rows, Py_ssize_t first, Py_ssize_t n, Py_ssize_t dups, const Row *a, const Row *z) {
    int64_t v[8];
    const Row *r[2] = {a, z};
    for (int j = 0; j < 2; j++) {
        if (!parse_decimal(r[j]->oi, r[j]->noi, 0, &v[4 * j], &v[4 * j + 1]) ||
            !parse_decimal(r[j]->ccy, r[j]->nccy, 0, &v[4 * j + 2], &v[4 * j + 3]))
            return 0;
    }
    int64_t *row = new_row(rows);
    if (row == NULL) return -1;
    row[0] = R_OI; row[1] = first; row[2] = first + n - 1; row[3] = n; row[4] = dups;
    row[5] = a->ts; row[6] = z->ts;
    row[7] = v[0]; row[8] = v[1]; row[9] = v[2]; row[10] = v[3];
    row[11] = v[4]; row[12] = v[5]; row[13] = v[6]; row[14] = v[7];
    return 1;
}

static int other_row(Rows *rows, Py_ssize_t k, Py_ssize_t start, Py_ssize_t stop) {
    int64_t *row = new_row(rows);
    if (row == NULL) return -1;
    row[0] = R_OTHER; row[1] = row[2] = k; row[3] = start; row[4] = stop;
    return 0;
}

static const char scan_okx_doc[] =
    "scan_okx(buf, oi_prefix, funding_prefix, inst) -> (rows, lines): the lines of buf as rows of 16 int64\n"
    "(see derivs_lines.OkxColumns): open-interest runs, funding items, liquidation details (of every\n"
    "instrument), and the other lines to read the reference way.";

/* the scan itself, without the GIL: its rows into *out, the lines into *lines; -1 when memory ran out */
static int scan(const char *base, const char *stop, const char *prefix, Py_ssize_t np, const char *fprefix,
                Py_ssize_t nfp, const char *inst, Py_ssize_t ninst, Rows *out, Py_ssize_t *lines) {
    Rows rows = {NULL, 0, 0};
    Row first = {0}, last = {0}, row;
    Py_ssize_t run_first = -1, run_n = 0, run_dups = 0, k = 0;
    const char *p = base, *run_start = NULL;
    /* a run whose values are not canonical decimals is handed back line by line */
#define FLUSH()                                                                                                  \
    do {                                                                                                         \
        if (run_n) {                                                                                             \
            int got = run_row(&rows, run_first, run_n, run_dups, &first, &last);                                 \
            if (got < 0) goto fail;                                                                              \
            if (got == 0) {                                                                                      \
                const char *q = run_start;                                                                       \
                for (Py_ssize_t j = 0; j < run_n; j++) {                                                         \
                    const char *e = memchr(q, '\n', (size_t)(stop - q));                                         \
                    if (other_row(&rows, run_first + j, q - base, e - base) < 0) goto fail;                      \
                    q = e + 1;                                                                                   \
                }                                                                                                \
            }                                                                                                    \
            run_n = 0;                                                                                           \
        }                                                                                                        \
    } while (0)
    while (p < stop) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        if (nl == NULL) break;
        const char *end = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        if (read_row(p, end, prefix, np, &row)) {
            if (run_n && row.ts / 60000 == last.ts / 60000 && row.ts >= last.ts) {
                if (same(&row, &last)) run_dups++;
                run_n++;
                last = row;
            } else {
                FLUSH();
                first = last = row;
                run_first = k;
                run_start = p;
                run_n = 1;
                run_dups = 0;
            }
        } else {
            FLUSH();
            int got = funding_line(p, end, fprefix, nfp, inst, ninst, &rows, k);
            if (got == 0) got = liquidation_line(p, end, inst, ninst, &rows, k);
            if (got < 0) goto fail;
            if (got == 0 && other_row(&rows, k, p - base, nl - base) < 0) goto fail;
        }
        k++;
        p = nl + 1;
    }
    FLUSH();
#undef FLUSH
    *out = rows;
    *lines = k;
    return 0;
fail:
    PyMem_RawFree(rows.v);
    return -1;
}

static PyObject *scan_okx(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) || !PyBytes_Check(args[2]) ||
        !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "scan_okx(buf: bytes, oi_prefix: bytes, funding_prefix: bytes, inst: bytes)");
        return NULL;
    }
    const char *base = PyBytes_AS_STRING(args[0]), *stop = base + PyBytes_GET_SIZE(args[0]);
    Rows rows = {NULL, 0, 0};
    Py_ssize_t lines = 0;
    int bad;
    /* the bytes objects are held by the caller (immutable): read without the GIL, as the trade kernel reads */
    Py_BEGIN_ALLOW_THREADS
    bad = scan(base, stop, PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]), PyBytes_AS_STRING(args[2]),
               PyBytes_GET_SIZE(args[2]), PyBytes_AS_STRING(args[3]), PyBytes_GET_SIZE(args[3]), &rows, &lines);
    Py_END_ALLOW_THREADS
    if (bad) return PyErr_NoMemory();
    PyObject *out = PyBytes_FromStringAndSize((const char *)rows.v, rows.n * COLS * (Py_ssize_t)sizeof(int64_t));
    PyMem_RawFree(rows.v);
    if (out == NULL) return NULL;
    return Py_BuildValue("(Nn)", out, lines);
}

static PyMethodDef methods[] = {
    {"scan_okx", (PyCFunction)(void (*)(void))scan_okx, METH_FASTCALL, scan_okx_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "indicator_core._native_derivs",
    "The compiled kernel of the derivatives reader (optional; the pure path gives the same results).", -1, methods,
};

PyMODINIT_FUNC PyInit__native_derivs(void) { return PyModule_Create(&module); }
