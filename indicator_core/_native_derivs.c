/* The compiled kernel of the derivatives reader (see indicator_core/sources/derivs_lines.py).
 *
 * - scan_oi(buf, prefix) -> segments: the lines of a chunk in order, the open-interest pushes of
 *   OKX's own layout folded into runs exactly as derivs_lines.okx_fast folds the rows its regular
 *   expression matches; every other line is handed back for the reference path.  A segment is
 *     (line_index, start, end)                                    a line to read the reference way
 *                                                                 (buf[start:end], without its \n), or
 *     (line_index, n, dups, ts_first, oi, ccy, ts_last, oi, ccy,  a run of n open-interest pushes of
 *      end_index)                                                 one minute, ts never going back;
 *                                                                 dups: pushes equal to the one before
 *   A line is taken as a push only in exactly the layout the regular expression accepts (prefix:
 *   '{"arg":{"channel":"open-interest","instId":"X"},"data":[{"instId":"X","instType":"'), so the
 *   kernel and the pure path read every line alike (tested).
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

static int append_run(PyObject *out, Py_ssize_t first, Py_ssize_t n, Py_ssize_t dups, const Row *a, const Row *z) {
    PyObject *t = Py_BuildValue("(nnnLs#s#Ls#s#n)", first, n, dups, a->ts, a->oi, a->noi, a->ccy, a->nccy, z->ts,
                                z->oi, z->noi, z->ccy, z->nccy, first + n - 1);
    if (t == NULL) return -1;
    int bad = PyList_Append(out, t);
    Py_DECREF(t);
    return bad;
}

static const char scan_oi_doc[] =
    "scan_oi(buf, prefix) -> list: the lines of buf (complete, each ended by \\n) as segments: runs of\n"
    "open-interest pushes of OKX's own layout and the other lines (see the module's documentation).";

static PyObject *scan_oi(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "scan_oi(buf: bytes, prefix: bytes)");
        return NULL;
    }
    const char *base = PyBytes_AS_STRING(args[0]), *stop = base + PyBytes_GET_SIZE(args[0]);
    const char *prefix = PyBytes_AS_STRING(args[1]);
    Py_ssize_t np = PyBytes_GET_SIZE(args[1]);
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    Row first = {0}, last = {0}, row;
    Py_ssize_t run_first = -1, run_n = 0, run_dups = 0, k = 0;
    const char *p = base;
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
                if (run_n && append_run(out, run_first, run_n, run_dups, &first, &last)) goto fail;
                first = last = row;
                run_first = k;
                run_n = 1;
                run_dups = 0;
            }
        } else {
            if (run_n && append_run(out, run_first, run_n, run_dups, &first, &last)) goto fail;
            run_n = 0;
            PyObject *t = Py_BuildValue("(nnn)", k, (Py_ssize_t)(p - base), (Py_ssize_t)(nl - base));
            if (t == NULL) goto fail;
            int bad = PyList_Append(out, t);
            Py_DECREF(t);
            if (bad) goto fail;
        }
        k++;
        p = nl + 1;
    }
    if (run_n && append_run(out, run_first, run_n, run_dups, &first, &last)) goto fail;
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_oi", (PyCFunction)(void (*)(void))scan_oi, METH_FASTCALL, scan_oi_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "indicator_core._native_derivs",
    "The compiled kernel of the derivatives reader (optional; the pure path gives the same results).", -1, methods,
};

PyMODINIT_FUNC PyInit__native_derivs(void) { return PyModule_Create(&module); }
