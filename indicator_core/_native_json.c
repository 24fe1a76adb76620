/* The compiled kernel of indicator_core/jsonlines.py: records written from columns, one JSON line each.
 *
 * A record-writing indicator (whales, liquidations, derivs) would otherwise build a dict and format a
 * few decimals per record in Python (~10 µs a record).  Here a whole batch is written at once from its
 * columns, with the same bytes orjson.dumps would give for the dict: literal runs between the values
 * (names and separators; quotes are the value's own), and per value a kind:
 *   'T'  int64 milliseconds     -> "YYYY-MM-DDTHH:MM:SS.mmmZ"
 *   'D'  int64 mantissa + scale -> plain decimal, no exponent, no trailing zeros ("60000.1", "-5", "0.5");
 *                                  with the plus flag "+" before a positive value (fmt_signed)
 *   'I'  int64                  -> its digits
 *   'B'  uint8                  -> one of two texts (true: the first)
 *   'L'  uint8                  -> true / false
 *   'S'  list of str            -> the text as it is (ASCII without '"', '\\' or control bytes: checked)
 *   'R'  list of bytes          -> JSON text written as it is (the caller's: what orjson.dumps gives)
 * Each column may have a null mask (uint8, nonzero: the value is null).  A quoted column's value is
 * written between quotes.  A value it cannot write the way orjson would (a text that needs escaping)
 * raises ValueError, and the caller writes that batch the pure way.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_VALUES 64

typedef struct {
    char kind;
    Py_buffer buf;
    int has_buf;
    Py_buffer null; /* uint8: nonzero where the value is null */
    int has_null;
    int quoted, plus;
    int scale;
    const char *texts[2];
    Py_ssize_t text_len[2];
    PyObject *list; /* 'S', 'R' */
} column_t;

/* days since 1970-01-01 -> civil date (Howard Hinnant's algorithm) */
static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static char *put2(char *p, unsigned v) { p[0] = (char)('0' + v / 10); p[1] = (char)('0' + v % 10); return p + 2; }

static char *put_iso_ms(char *p, int64_t ms) {
    int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    int64_t rest = ms - days * 86400000;
    int64_t y;
    unsigned m, d;
    civil(days, &y, &m, &d);
    unsigned yy = (unsigned)y;
    p[0] = (char)('0' + yy / 1000 % 10); p[1] = (char)('0' + yy / 100 % 10);
    p[2] = (char)('0' + yy / 10 % 10); p[3] = (char)('0' + yy % 10);
    p += 4; *p++ = '-'; p = put2(p, m); *p++ = '-'; p = put2(p, d); *p++ = 'T';
    unsigned s = (unsigned)(rest / 1000), milli = (unsigned)(rest % 1000);
    p = put2(p, s / 3600); *p++ = ':'; p = put2(p, s / 60 % 60); *p++ = ':'; p = put2(p, s % 60); *p++ = '.';
    p[0] = (char)('0' + milli / 100); p[1] = (char)('0' + milli / 10 % 10); p[2] = (char)('0' + milli % 10);
    p += 3; *p++ = 'Z';
    return p;
}

static char *put_uint(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put_int(char *p, int64_t v) {
    if (v < 0) { *p++ = '-'; return put_uint(p, (uint64_t)0 - (uint64_t)v); }
    return put_uint(p, (uint64_t)v);
}

/* m x 10^-scale, plainly, trailing zeros dropped; a '-' before a negative one, a '+' before a positive
 * one when plus */
static char *put_decimal(char *p, int64_t m, int scale, int plus) {
    char digits[24];
    int n = 0;
    uint64_t v;
    if (m < 0) { *p++ = '-'; v = (uint64_t)0 - (uint64_t)m; }
    else { if (plus && m > 0) *p++ = '+'; v = (uint64_t)m; }
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v); /* least significant first */
    int skip = 0; /* trailing zeros of the fraction */
    while (skip < scale && skip < n && digits[skip] == '0') skip++;
    if (skip < scale && n <= skip) skip = scale; /* cannot happen: m == 0 has one digit '0' */
    if (scale == 0) {
        while (n) *p++ = digits[--n];
        return p;
    }
    if (m == 0) { *p++ = '0'; return p; }
    /* integer part: digits[scale..n-1], or "0" */
    if (n > scale) { for (int k = n - 1; k >= scale; k--) *p++ = digits[k]; }
    else *p++ = '0';
    if (skip >= scale) return p; /* no fraction left */
    *p++ = '.';
    for (int k = scale - 1; k >= skip; k--) *p++ = k < n ? digits[k] : '0';
    return p;
}

static int safe_text(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') return 0;
    }
    return 1;
}

PyDoc_STRVAR(json_lines_doc,
"json_lines(literals, specs, n) -> bytes\n\n"
"n JSON lines: literals[0] value[0] literals[1] ... value[k-1] literals[k] for each row; specs[j] is\n"
"(kind, column, extra, null, quoted, plus) of value j (see the module comment): extra is the scale of a\n"
"'D' column, the pair of texts of a 'B' column, None otherwise; null a uint8 mask or None.\n"
"ValueError when a value cannot be written as orjson would.");

static int list_room(column_t *c, Py_ssize_t n, Py_ssize_t *room) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (c->has_null && ((const uint8_t *)c->null.buf)[i]) continue;
        PyObject *s = PyList_GET_ITEM(c->list, i);
        Py_ssize_t len;
        if (c->kind == 'R') {
            if (!PyBytes_Check(s)) { PyErr_SetString(PyExc_ValueError, "an 'R' column is a list of bytes"); return -1; }
            len = PyBytes_GET_SIZE(s);
        } else {
            const char *t = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &len) : NULL;
            if (t == NULL || !safe_text(t, len)) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError, "a text that JSON would escape");
                return -1;
            }
        }
        *room += len;
    }
    return 0;
}

static PyObject *json_lines(PyObject *self, PyObject *args) {
    PyObject *lits, *specs;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!O!n", &PyTuple_Type, &lits, &PyTuple_Type, &specs, &n)) return NULL;
    Py_ssize_t n_kinds = PyTuple_GET_SIZE(specs);
    if (n_kinds > MAX_VALUES || PyTuple_GET_SIZE(lits) != n_kinds + 1 || n < 0) {
        PyErr_SetString(PyExc_ValueError, "json_lines: one more literal than values, at most 64 values");
        return NULL;
    }
    column_t col[MAX_VALUES];
    memset(col, 0, sizeof(col));
    PyObject *result = NULL;
    Py_ssize_t k = 0;
    Py_ssize_t fixed = 0, per_row = 0;
    for (Py_ssize_t j = 0; j <= n_kinds; j++) {
        PyObject *lit = PyTuple_GET_ITEM(lits, j);
        if (!PyBytes_Check(lit)) { PyErr_SetString(PyExc_TypeError, "literals must be bytes"); return NULL; }
        fixed += PyBytes_GET_SIZE(lit);
    }
    for (k = 0; k < n_kinds; k++) {
        column_t *c = &col[k];
        PyObject *spec = PyTuple_GET_ITEM(specs, k);
        const char *kind;
        Py_ssize_t kind_len;
        PyObject *o, *x, *null;
        if (!PyTuple_Check(spec) || !PyArg_ParseTuple(spec, "y#OOOii", &kind, &kind_len, &o, &x, &null, &c->quoted, &c->plus))
            goto done;
        if (kind_len != 1) { PyErr_SetString(PyExc_ValueError, "a kind is one byte"); goto done; }
        c->kind = kind[0];
        per_row += 6; /* quotes, or null */
        if (null != Py_None) {
            if (PyObject_GetBuffer(null, &c->null, PyBUF_C_CONTIGUOUS) < 0) goto done;
            c->has_null = 1;
            if (c->null.len < n) { PyErr_SetString(PyExc_ValueError, "a null mask is shorter than n"); goto done; }
        }
        if (c->kind == 'S' || c->kind == 'R') {
            if (!PyList_Check(o) || PyList_GET_SIZE(o) < n) { PyErr_SetString(PyExc_ValueError, "a text column is a list of n values"); goto done; }
            c->list = o;
            continue;
        }
        Py_ssize_t item = c->kind == 'B' || c->kind == 'L' ? 1 : 8;
        if (PyObject_GetBuffer(o, &c->buf, PyBUF_C_CONTIGUOUS) < 0) goto done;
        c->has_buf = 1;
        if (c->buf.len < n * item) { PyErr_SetString(PyExc_ValueError, "a column is shorter than n"); goto done; }
        switch (c->kind) {
        case 'T': per_row += 24; break;
        case 'I': per_row += 21; break;
        case 'L': per_row += 5; break;
        case 'D':
            c->scale = (int)PyLong_AsLong(x);
            if (c->scale < 0 || c->scale > 18) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a scale of 0..18"); goto done; }
            per_row += 23;
            break;
        case 'B':
            if (!PyTuple_Check(x) || PyTuple_GET_SIZE(x) != 2) { PyErr_SetString(PyExc_ValueError, "a 'B' column's extra is two bytes"); goto done; }
            for (int t = 0; t < 2; t++) {
                PyObject *b = PyTuple_GET_ITEM(x, t);
                if (!PyBytes_Check(b)) { PyErr_SetString(PyExc_TypeError, "a 'B' text must be bytes"); goto done; }
                c->texts[t] = PyBytes_AS_STRING(b);
                c->text_len[t] = PyBytes_GET_SIZE(b);
                per_row += c->text_len[t];
            }
            break;
        default:
            PyErr_Format(PyExc_ValueError, "unknown kind %c", c->kind);
            goto done;
        }
    }
    /* room: the fixed parts, the widest numbers, and the texts' lengths */
    Py_ssize_t room = n * (fixed + per_row);
    for (k = 0; k < n_kinds; k++)
        if (col[k].list != NULL && list_room(&col[k], n, &room) < 0) goto done;
    result = PyBytes_FromStringAndSize(NULL, room);
    if (result == NULL) goto done;
    char *p = PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        for (k = 0; k <= n_kinds; k++) {
            PyObject *lit = PyTuple_GET_ITEM(lits, k);
            memcpy(p, PyBytes_AS_STRING(lit), PyBytes_GET_SIZE(lit));
            p += PyBytes_GET_SIZE(lit);
            if (k == n_kinds) break;
            column_t *c = &col[k];
            if (c->has_null && ((const uint8_t *)c->null.buf)[i]) { memcpy(p, "null", 4); p += 4; continue; }
            int q = c->quoted && c->kind != 'R' && c->kind != 'L';
            if (q) *p++ = '"';
            switch (c->kind) {
            case 'T': p = put_iso_ms(p, ((const int64_t *)c->buf.buf)[i]); break;
            case 'I': p = put_int(p, ((const int64_t *)c->buf.buf)[i]); break;
            case 'D': p = put_decimal(p, ((const int64_t *)c->buf.buf)[i], c->scale, c->plus); break;
            case 'B': {
                int t = ((const uint8_t *)c->buf.buf)[i] ? 0 : 1;
                memcpy(p, c->texts[t], c->text_len[t]);
                p += c->text_len[t];
                break;
            }
            case 'L':
                if (((const uint8_t *)c->buf.buf)[i]) { memcpy(p, "true", 4); p += 4; }
                else { memcpy(p, "false", 5); p += 5; }
                break;
            case 'S': {
                Py_ssize_t len;
                const char *t = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(c->list, i), &len);
                memcpy(p, t, len);
                p += len;
                break;
            }
            case 'R': {
                PyObject *b = PyList_GET_ITEM(c->list, i);
                memcpy(p, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b));
                p += PyBytes_GET_SIZE(b);
                break;
            }
            }
            if (q) *p++ = '"';
        }
    }
    if (_PyBytes_Resize(&result, p - PyBytes_AS_STRING(result)) < 0) result = NULL;
done:
    for (k = 0; k < n_kinds; k++) {
        if (col[k].has_buf) PyBuffer_Release(&col[k].buf);
        if (col[k].has_null) PyBuffer_Release(&col[k].null);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"json_lines", json_lines, METH_VARARGS, json_lines_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_json", "Records written from columns.", -1, methods};

PyMODINIT_FUNC PyInit__native_json(void) { return PyModule_Create(&module); }
