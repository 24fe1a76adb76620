/* The compiled kernel of the trade parser's fast path (see indicator_core/sources/columnar.py).
 *
 * It does what columnar.parse_with_layout does with numpy, one line at a time
 * and without the GIL: a line is accepted when it is exactly the chunk's
 * layout (literal runs with plain values between them) and every value is
 * valid for its field; its columns are written and ok[i] set to 1.  Every
 * other line keeps ok[i] = 0 and goes to the reference parser, so this kernel
 * may be stricter than the reference, never looser: tests compare both paths
 * with the reference on generated and recorded lines.
 *
 * Only the buffer protocol is used (no numpy headers): the caller hands in
 * writable int64 and uint8 arrays sized for the chunk's lines.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* how a value is read: the codes of KIND_CODES in columnar.py */
enum {
    K_TRADE_ID = 0,
    K_TS = 1,
    K_COUNT = 2,
    K_PX = 3,
    K_SZ = 4,
    K_SIDE = 5,
    K_SKIP = 6,        /* an ignored quoted value: short printable text */
    K_SKIP_DIGITS = 7, /* an ignored unquoted unsigned integer */
    K_MAKER = 8,       /* Binance's unquoted `m`: true when the buyer was the maker (the taker sold) */
    K_SIDE_CAP = 9,    /* Bybit's taker side, capitalised: Buy or Sell */
    K_SKIP_WORD = 10,  /* an ignored unquoted true or false */
    K_TEXT_ID = 11,    /* a trade id that is text (Bybit's): its digest as trade_id, and where its text is */
    K_SECONDS = 12,    /* the time as seconds with a fraction (Bybit's archives): ts in ms, rounded down */
    K_CELL = 13,       /* an ignored CSV cell: up to 64 printable bytes, no comma or quote, maybe none */
};

/* the rows of the int64 output block, one column per row */
enum { C_TS = 0, C_TRADE_ID, C_COUNT, C_PX_M, C_PX_S, C_SZ_M, C_SZ_S, N_COLUMNS };
/* a layout with a text id writes two more rows: where the id's text starts and ends in buf */
enum { C_KEY_START = N_COLUMNS, C_KEY_END, N_COLUMNS_WITH_KEYS };
#define MAX_TEXT_ID 64 /* the longest text id read here */

#define MAX_DIGITS 18  /* every 18-digit mantissa fits an int64 */
#define MAX_SKIPPED 16 /* the longest ignored quoted value read here */
#define MAX_VALUES 32

/* 1..18 ASCII digits as a positive value; 0 when not. */
static int read_uint(const char *p, Py_ssize_t n, int64_t *out) {
    if (n < 1 || n > MAX_DIGITS) return 0;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)p[i] - '0';
        if (d > 9) return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* A plain decimal "123" or "123.45": at least one digit each side of a point, at
 * most 18 digits in all, not zero.  Writes the mantissa and the scale. */
static int read_decimal(const char *p, Py_ssize_t n, int64_t *mantissa, int64_t *scale) {
    int64_t v = 0;
    Py_ssize_t digits = 0, dot = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        unsigned d = c - '0';
        if (d <= 9) {
            v = v * 10 + d;
            if (++digits > MAX_DIGITS) return 0;
        } else if (c == '.' && dot < 0) {
            dot = i;
        } else {
            return 0;
        }
    }
    if (digits == 0 || dot == 0 || dot == n - 1 || v == 0) return 0;
    *mantissa = v;
    *scale = dot < 0 ? 0 : n - 1 - dot;
    return 1;
}

static int safe_text(const char *p, Py_ssize_t n) {
    if (n > MAX_SKIPPED) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\' || c == ',') return 0;
    }
    return 1;
}

/* A text id: 1..64 printable bytes, no quote or backslash.  Its digest is the 64-bit FNV-1a hash without the lowest
 * bit, as indicator_core.sources.bybit.id_key computes it (positive, stable across processes). */
static int text_id(const char *p, Py_ssize_t n, int64_t *digest) {
    if (n < 1 || n > MAX_TEXT_ID) return 0;
    uint64_t h = 0xCBF29CE484222325ULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == '\\') return 0;
        h = (h ^ c) * 0x100000001B3ULL;
    }
    *digest = (int64_t)(h >> 1);
    return 1;
}

/* An ignored CSV cell: 0..64 printable bytes, no comma or quote. */
static int csv_cell(const char *p, Py_ssize_t n) {
    if (n > MAX_TEXT_ID) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7E || c == '"' || c == ',') return 0;
    }
    return 1;
}

#if defined(_MSC_VER)
#include <intrin.h>
static int lowest_bit(uint64_t x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
#else
static int lowest_bit(uint64_t x) { return __builtin_ctzll(x); }
#endif

static const int64_t POW10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL, 1000000000LL,
    10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL, 100000000000000LL, 1000000000000000LL,
    10000000000000000LL, 100000000000000000LL, 1000000000000000000LL,
};

/* Seconds as a plain decimal ("1732320000.1234") as milliseconds rounded down; 0 when not such a time. */
static int64_t seconds_ms(const char *p, Py_ssize_t n) {
    int64_t m, scale;
    if (!read_decimal(p, n, &m, &scale)) return 0;
    if (scale > 3) return m / POW10[scale - 3];
    if (m > INT64_MAX / POW10[3 - scale]) return 0;
    return m * POW10[3 - scale];
}

/* ---- numbers read eight bytes at a time (little-endian machines; elsewhere the byte loops above) ---------------------
 * A value of the layout is found by its end, the first byte that cannot belong to it, instead of by memchr of the
 * literal after it: the same lines are accepted as long as the literal's first byte cannot occur in the value
 * (layout_t.swar says so per value), because then the first non-digit after a run of digits is where memchr would
 * have stopped.  Used only with at least SWAR_ROOM bytes left in the buffer, so no load reads past its end. */

#define SWAR_ROOM 64

#if defined(_MSC_VER)
#define HOT static __forceinline
#else
#define HOT static inline __attribute__((always_inline))
#endif

/* the eight bytes at p as a word, the first byte lowest (read so on little-endian machines only) */
HOT uint64_t load_word(const char *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static int little_endian(void) { return *(const uint16_t *)"\1\0" == 1; }

/* nonzero bits in the bytes of the word that are not ASCII digits: a byte is a digit when its high nibble is 3 and
   stays 3 after adding 6.  No byte that is not a digit goes unflagged; a digit is flagged only right after a byte
   of 0xFA-0xFF (whose carry it takes), itself flagged: the flags are exact up to the first flagged byte, and up to
   the first flagged byte after any stretch of digits and points */
HOT uint64_t non_digits(uint64_t w) {
    uint64_t high = (w & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL;
    uint64_t plus6 = ((w + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL;
    return high | plus6;
}

/* how many of the word's bytes, in memory order, are ASCII digits before the first that is not (8: all) */
HOT int leading_digits(uint64_t w) {
    uint64_t not_digit = non_digits(w);
    return not_digit ? lowest_bit(not_digit) >> 3 : 8;
}

/* the value of the word's first n (1..8) bytes, all digits */
HOT uint64_t digits_value(uint64_t w, int n) {
    /* the digits to the top bytes, zeros (leading zeros) below; then pairs, quads and the eight combined */
    w = ((w & 0x0F0F0F0F0F0F0F0FULL) << (8 * (8 - n)));
    w = (w * 10 + (w >> 8)) & 0x00FF00FF00FF00FFULL;
    w = (w * 100 + (w >> 16)) & 0x0000FFFF0000FFFFULL;
    return (w * 10000 + (w >> 32)) & 0xFFFFFFFFULL;
}

/* the digits at p after a first word of n (1..8) digits of value v: all of them, as scan_uint gives them */
HOT int scan_rest(const char *p, uint64_t v, int n, int64_t *out, Py_ssize_t *len) {
    Py_ssize_t total = n;
    while (n == 8) {
        const uint64_t w = load_word(p + total);
        n = leading_digits(w);
        if (total + n > MAX_DIGITS) return 0;
        if (n) v = v * (uint64_t)POW10[n] + digits_value(w, n);
        total += n;
    }
    *out = (int64_t)v;
    *len = total;
    return 1;
}

/* 1..18 digits at p: their value and how many; 0 when there is none, or more than 18 */
HOT int scan_uint(const char *p, int64_t *out, Py_ssize_t *len) {
    const uint64_t w = load_word(p);
    const int n = leading_digits(w);
    if (n == 0) return 0;
    return scan_rest(p, digits_value(w, n), n, out, len);
}

/* The first eight bytes of a value read last time, when they were all digits, and their value: the trade id and the
 * time of consecutive lines mostly begin alike (ids counting up, times in the same day), and a word equal to the one
 * remembered has that value without the arithmetic. */
typedef struct {
    uint64_t word;
    uint64_t value;
} memo_t;

/* scan_uint, with the value of a first word that equals the remembered one taken from the memo */
HOT int scan_uint_memo(const char *p, int64_t *out, Py_ssize_t *len, memo_t *memo) {
    const uint64_t w = load_word(p);
    if (w != memo->word) {
        if (leading_digits(w) < 8) return scan_uint(p, out, len);
        memo->word = w;
        memo->value = digits_value(w, 8);
    }
    return scan_rest(p, memo->value, 8, out, len);
}

/* what read_decimal accepts, read from p up to the first byte that cannot belong to it: its length, or 0 */
HOT Py_ssize_t scan_decimal(const char *p, int64_t *mantissa, int64_t *scale) {
    { /* most prices and sizes end within their first word ("95000.1", "0.01"): read from it alone, the point
         squeezed out */
        const uint64_t w = load_word(p);
        const uint64_t not_digit = non_digits(w);
        if (not_digit) {
            const int d = lowest_bit(not_digit) >> 3; /* the first byte that is not a digit */
            if (d == 0) return 0;
            if (p[d] != '.') {
                const int64_t v = (int64_t)digits_value(w, d);
                if (v == 0) return 0;
                *mantissa = v;
                *scale = 0;
                return d;
            }
            /* the non-digits after the point (none in this word when the point is its last byte) */
            const uint64_t after = d < 7 ? not_digit & (~0ULL << (8 * d + 8)) : 0;
            if (after) {
                const int e = lowest_bit(after) >> 3; /* the end: digits in d + 1 .. e - 1 */
                if (e == d + 1) return 0;             /* a point with no digit after it */
                const uint64_t below = (1ULL << (8 * d)) - 1;
                const int64_t v = (int64_t)digits_value((w & below) | ((w >> 8) & ~below), e - 1);
                if (v == 0) return 0;
                *mantissa = v;
                *scale = e - d - 1;
                return e;
            }
        }
    }
    int64_t whole, frac = 0;
    Py_ssize_t n1, n2 = 0;
    if (!scan_uint(p, &whole, &n1)) return 0;
    if (p[n1] == '.' && !scan_uint(p + n1 + 1, &frac, &n2)) return 0;
    if (n1 + n2 > MAX_DIGITS) return 0;
    int64_t v = whole * POW10[n2] + frac;
    if (v == 0) return 0;
    *mantissa = v;
    *scale = n2;
    return n2 ? n1 + 1 + n2 : n1;
}

typedef struct {
    const char *text[MAX_VALUES + 1];
    Py_ssize_t size[MAX_VALUES + 1];
    unsigned char kind[MAX_VALUES];
    unsigned char swar[MAX_VALUES]; /* the value may be read by its end: its literal's first byte cannot be in it */
    uint64_t lit_word[MAX_VALUES][2], lit_mask[MAX_VALUES][2]; /* literal j + 1 as two words, for one of <= 16 bytes */
    Py_ssize_t values;
    int has_count;
    int has_text_id;
    const char *base; /* the buffer's start: a text id's place is written as an offset from it */
} layout_t;

/* Parse the line that starts at p against the layout, looking no further than end (the end of the buffer).
 * When it fits, its columns are written at row i, *line_end is its '\n' and 1 is returned.  A value never holds a
 * byte below 0x20, so no match runs over a line end: a line fits exactly when the layout ends at its '\n'. */
static int parse_line(const layout_t *lay, memo_t *memo, const char *p, const char *end, int64_t lo, int64_t hi,
                      int64_t **col, uint8_t *is_buy, Py_ssize_t i, const char **line_end) {
    if (end - p < lay->size[0] || memcmp(p, lay->text[0], lay->size[0]) != 0) return 0;
    p += lay->size[0];
    int outside = 0; /* every value fits but the time, outside [lo, hi): 2 instead of 1 */
    for (Py_ssize_t j = 0; j < lay->values; j++) {
        const char *lit = lay->text[j + 1];
        Py_ssize_t lit_n = lay->size[j + 1];
        const char *q;
        if (lay->swar[j] && end - p >= SWAR_ROOM) {
            int64_t v;
            Py_ssize_t n = 0;
            switch (lay->kind[j]) {
            case K_TRADE_ID:
                if (!scan_uint_memo(p, &v, &n, &memo[j]) || v <= 0) return 0;
                col[C_TRADE_ID][i] = v;
                break;
            case K_TS:
                if (!scan_uint_memo(p, &v, &n, &memo[j]) || v <= 0) return 0;
                outside |= v < lo || v >= hi;
                col[C_TS][i] = v;
                break;
            case K_COUNT:
                if (!scan_uint(p, &v, &n) || v <= 0) return 0;
                col[C_COUNT][i] = v;
                break;
            case K_PX:
                n = scan_decimal(p, &col[C_PX_M][i], &col[C_PX_S][i]);
                break;
            case K_SZ:
                n = scan_decimal(p, &col[C_SZ_M][i], &col[C_SZ_S][i]);
                break;
            case K_SIDE: { /* without a branch on the side: buy and sell come in no order a predictor learns */
                uint64_t w = load_word(p);
                int buy = (w & 0xFFFFFFULL) == 0x797562ULL, sell = (w & 0xFFFFFFFFULL) == 0x6C6C6573ULL;
                is_buy[i] = (uint8_t)buy;
                n = buy * 3 + sell * 4;
                break;
            }
            case K_MAKER:
                if (memcmp(p, "true", 4) == 0) { is_buy[i] = 0; n = 4; }
                else if (memcmp(p, "false", 5) == 0) { is_buy[i] = 1; n = 5; }
                break;
            case K_SKIP_DIGITS:
                if (!scan_uint(p, &v, &n)) return 0;
                break;
            }
            q = p + n;
            if (n == 0) return 0;
            if (lit_n <= 16) {
                if (((load_word(q) ^ lay->lit_word[j][0]) & lay->lit_mask[j][0]) |
                    ((load_word(q + 8) ^ lay->lit_word[j][1]) & lay->lit_mask[j][1]))
                    return 0;
            } else if (memcmp(q, lit, lit_n) != 0) {
                return 0;
            }
            p = q + lit_n;
            continue;
        }
        if (lit_n == 0) { /* an empty literal (the last one of a CSV row) ends the value at the line end */
            q = memchr(p, '\n', end - p);
            if (q == NULL) return 0;
        } else {
            q = memchr(p, lit[0], end - p);
            if (q == NULL || end - q < lit_n || memcmp(q, lit, lit_n) != 0) return 0;
        }
        Py_ssize_t n = q - p;
        int64_t v;
        switch (lay->kind[j]) {
        case K_TRADE_ID:
            if (!read_uint(p, n, &v) || v <= 0) return 0;
            col[C_TRADE_ID][i] = v;
            break;
        case K_TS:
            if (!read_uint(p, n, &v) || v <= 0) return 0;
            outside |= v < lo || v >= hi;
            col[C_TS][i] = v;
            break;
        case K_COUNT:
            if (!read_uint(p, n, &v) || v <= 0) return 0;
            col[C_COUNT][i] = v;
            break;
        case K_PX:
            if (!read_decimal(p, n, &col[C_PX_M][i], &col[C_PX_S][i])) return 0;
            break;
        case K_SZ:
            if (!read_decimal(p, n, &col[C_SZ_M][i], &col[C_SZ_S][i])) return 0;
            break;
        case K_SIDE:
            if (n == 3 && memcmp(p, "buy", 3) == 0) is_buy[i] = 1;
            else if (n == 4 && memcmp(p, "sell", 4) == 0) is_buy[i] = 0;
            else return 0;
            break;
        case K_MAKER:
            if (n == 4 && memcmp(p, "true", 4) == 0) is_buy[i] = 0;
            else if (n == 5 && memcmp(p, "false", 5) == 0) is_buy[i] = 1;
            else return 0;
            break;
        case K_SKIP:
            if (!safe_text(p, n)) return 0;
            break;
        case K_SKIP_DIGITS:
            if (!read_uint(p, n, &v)) return 0;
            break;
        case K_SIDE_CAP:
            if (n == 3 && memcmp(p, "Buy", 3) == 0) is_buy[i] = 1;
            else if (n == 4 && memcmp(p, "Sell", 4) == 0) is_buy[i] = 0;
            else return 0;
            break;
        case K_SKIP_WORD:
            if (!((n == 4 && memcmp(p, "true", 4) == 0) || (n == 5 && memcmp(p, "false", 5) == 0))) return 0;
            break;
        case K_SECONDS:
            v = seconds_ms(p, n);
            if (v <= 0) return 0;
            outside |= v < lo || v >= hi;
            col[C_TS][i] = v;
            break;
        case K_CELL:
            if (!csv_cell(p, n)) return 0;
            break;
        case K_TEXT_ID:
            if (!col[C_KEY_START] || !text_id(p, n, &col[C_TRADE_ID][i])) return 0;
            col[C_KEY_START][i] = p - lay->base;
            col[C_KEY_END][i] = q - lay->base;
            break;
        default:
            return 0;
        }
        p = q + lit_n;
    }
    if (p >= end || *p != '\n') return 0;
    *line_end = p;
    if (!lay->has_count) col[C_COUNT][i] = 1;
    return outside ? 2 : 1;
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t need, Py_ssize_t item, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->len < need * item) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, %zd needed", what, view->len, need * item);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(parse_layout_doc,
"parse_layout(buf, literals, kinds, lo, hi, columns, is_buy, ok, ends) -> (int, int)\n\n"
"Walk the lines of buf, each ending in '\\n', writing each line's end into ends, until buf ends or ends\n"
"is full (room for n int64 entries). A line that fits the layout (literals: tuple of bytes, kinds: bytes\n"
"of value codes) with lo <= ts < hi has its values written to row i of columns (int64, 7 x n: ts,\n"
"trade_id, count, px_m, px_s, sz_m, sz_s; 9 x n for a layout with a text id, which adds where its text\n"
"starts and ends in buf) and is_buy (uint8), and ok[i] (uint8) set to 1 (2: it fits but its ts is outside\n"
"[lo, hi); its columns are written too). Returns how\n"
"many lines fit and how many were walked: all of buf's when fewer than n, so a caller that does not know\n"
"the count passes room for more and reads it here (one pass over the bytes instead of two).");

static PyObject *parse_layout(PyObject *self, PyObject *args) {
    PyObject *buf_o, *lits_o, *cols_o, *buy_o, *ok_o, *ends_o;
    const char *kinds;
    Py_ssize_t n_kinds;
    long long lo, hi;
    if (!PyArg_ParseTuple(args, "OO!y#LLOOOO", &buf_o, &PyTuple_Type, &lits_o, &kinds, &n_kinds, &lo, &hi,
                          &cols_o, &buy_o, &ok_o, &ends_o))
        return NULL;
    Py_ssize_t n_lits = PyTuple_GET_SIZE(lits_o);
    if (n_kinds < 1 || n_kinds > MAX_VALUES || n_lits != n_kinds + 1) {
        PyErr_SetString(PyExc_ValueError, "a layout has one more literal than values, and at most 32 values");
        return NULL;
    }
    layout_t lay;
    lay.values = n_kinds;
    lay.has_count = 0;
    lay.has_text_id = 0;
    for (Py_ssize_t j = 0; j < n_lits; j++) {
        PyObject *lit = PyTuple_GET_ITEM(lits_o, j);
        if (!PyBytes_Check(lit) || (j > 0 && j < n_lits - 1 && PyBytes_GET_SIZE(lit) == 0)) {
            PyErr_SetString(PyExc_ValueError, "literals must be bytes, all but the first and the last non-empty");
            return NULL;
        }
        lay.text[j] = PyBytes_AS_STRING(lit);
        lay.size[j] = PyBytes_GET_SIZE(lit);
    }
    const int little = little_endian();
    for (Py_ssize_t j = 0; j < n_kinds; j++) {
        lay.kind[j] = (unsigned char)kinds[j];
        if (lay.kind[j] == K_COUNT) lay.has_count = 1;
        /* read by its end when the literal after it cannot start inside it (a digit, a point, a letter of a side)
           and is not longer than the room kept at the buffer's end */
        unsigned char first = lay.size[j + 1] ? (unsigned char)lay.text[j + 1][0] : 0;
        if (lay.kind[j] > K_CELL) {
            PyErr_Format(PyExc_ValueError, "unknown value code %d", (int)lay.kind[j]);
            return NULL;
        }
        if (lay.kind[j] == K_TEXT_ID) lay.has_text_id = 1;
        lay.swar[j] = little && lay.kind[j] <= K_MAKER && lay.kind[j] != K_SKIP && first && lay.size[j + 1] <= SWAR_ROOM / 2 &&
                      !(first >= '0' && first <= '9') && first != '.' &&
                      !strchr(lay.kind[j] == K_MAKER ? "truefals" : "buysel", first);
        unsigned char bytes[16] = {0}, mask[16] = {0};
        for (Py_ssize_t b = 0; b < lay.size[j + 1] && b < 16; b++) {
            bytes[b] = (unsigned char)lay.text[j + 1][b];
            mask[b] = 0xFF;
        }
        memcpy(lay.lit_word[j], bytes, 16);
        memcpy(lay.lit_mask[j], mask, 16);
    }
    Py_buffer buf, ends, cols, buy, ok;
    if (PyObject_GetBuffer(buf_o, &buf, PyBUF_C_CONTIGUOUS) < 0) return NULL;
    if (PyObject_GetBuffer(ends_o, &ends, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) goto fail_buf;
    Py_ssize_t n = ends.len / (Py_ssize_t)sizeof(int64_t);
    const int n_columns = lay.has_text_id ? N_COLUMNS_WITH_KEYS : N_COLUMNS;
    if (get_buffer(cols_o, &cols, n * n_columns, sizeof(int64_t), 1, "columns") < 0) goto fail_ends;
    if (get_buffer(buy_o, &buy, n, 1, 1, "is_buy") < 0) goto fail_cols;
    if (get_buffer(ok_o, &ok, n, 1, 1, "ok") < 0) goto fail_buy;

    const char *base = (const char *)buf.buf, *limit = base + buf.len;
    int64_t *line_end = (int64_t *)ends.buf;
    int64_t *col[N_COLUMNS_WITH_KEYS] = {NULL};
    for (int c = 0; c < n_columns; c++) col[c] = (int64_t *)cols.buf + (Py_ssize_t)c * n;
    lay.base = base;
    uint8_t *is_buy = (uint8_t *)buy.buf, *fits = (uint8_t *)ok.buf;
    Py_ssize_t good = 0;
    Py_ssize_t walked = 0;
    int short_buf = 0;

    memo_t memo[MAX_VALUES]; /* to begin with "00000000": only ever a word of eight digits, and its value */
    for (int j = 0; j < MAX_VALUES; j++) memo[j] = (memo_t){0x3030303030303030ULL, 0};
    Py_BEGIN_ALLOW_THREADS
    const char *p = base;
    Py_ssize_t i = 0;
    for (; i < n && p < limit; i++) {
        const char *e = NULL;
        fits[i] = (uint8_t)parse_line(&lay, memo, p, limit, lo, hi, col, is_buy, i, &e);
        if (!fits[i]) {
            e = memchr(p, '\n', limit - p);
            if (e == NULL) { short_buf = 1; break; }
        }
        good += fits[i] == 1;
        line_end[i] = e - base;
        p = e + 1;
    }
    walked = i;
    Py_END_ALLOW_THREADS

    PyBuffer_Release(&ok);
    PyBuffer_Release(&buy);
    PyBuffer_Release(&cols);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&buf);
    if (short_buf) {
        PyErr_SetString(PyExc_ValueError, "buf does not end with '\\n'");
        return NULL;
    }
    return Py_BuildValue("nn", good, walked);

fail_buy:
    PyBuffer_Release(&buy);
fail_cols:
    PyBuffer_Release(&cols);
fail_ends:
    PyBuffer_Release(&ends);
fail_buf:
    PyBuffer_Release(&buf);
    return NULL;
}


/* the top bit of each byte of w that is '\n' (exact: no borrow runs from byte to byte) */
static uint64_t newline_bits(uint64_t w) {
    uint64_t x = w ^ 0x0A0A0A0A0A0A0A0AULL;
    return ~(((x & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | x) & 0x8080808080808080ULL;
}


PyDoc_STRVAR(count_lines_doc, "count_lines(buf) -> int\n\nThe number of '\\n' bytes in buf.");

static Py_ssize_t count_newlines(const char *base, Py_ssize_t len) {
    /* 64 byte-wide counters, each adding one step of at most 255 (so none wraps), summed after each block: the
       inner loop is what compilers turn into vector compares and subtractions, 16 or 32 bytes an instruction,
       with no widening of the counts inside it */
    enum { LANES = 64, STEPS = 255 };
    Py_ssize_t count = 0, at = 0;
    while (len - at >= LANES) {
        unsigned char lane[LANES] = {0};
        Py_ssize_t steps = (len - at) / LANES;
        if (steps > STEPS) steps = STEPS;
        for (Py_ssize_t k = 0; k < steps; k++, at += LANES) {
            const unsigned char *b = (const unsigned char *)base + at;
            for (int j = 0; j < LANES; j++) lane[j] += b[j] == '\n';
        }
        for (int j = 0; j < LANES; j++) count += lane[j];
    }
    for (; at < len; at++) count += base[at] == '\n';
    return count;
}

static PyObject *count_lines(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS
    count = count_newlines((const char *)buf.buf, buf.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return PyLong_FromSsize_t(count);
}

PyDoc_STRVAR(take_lines_doc,
"take_lines(buffer, n) -> (bytes, int) or None\n\n"
"The complete lines of buffer[:n] (up to its last '\\n') copied into a new bytes object, and how many\n"
"they are; None when buffer[:n] holds no '\\n'. The copy and the count run without the GIL.");

static PyObject *take_lines(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*n", &buf, &n)) return NULL;
    if (n < 0 || n > buf.len) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "take_lines: n is outside the buffer");
        return NULL;
    }
    const char *base = (const char *)buf.buf;
    Py_ssize_t cut = n, count;
    while (cut > 0 && base[cut - 1] != '\n') cut--; /* back over the partial last line: a short walk */
    if (cut == 0) {
        PyBuffer_Release(&buf);
        Py_RETURN_NONE;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, cut);
    if (out == NULL) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    char *dst = PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS /* the new object is seen by no one else yet: its bytes are filled without the GIL */
    memcpy(dst, base, cut);
    count = count_newlines(dst, cut);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return Py_BuildValue("(Nn)", out, count);
}

PyDoc_STRVAR(line_ends_doc,
"line_ends(buf) -> bytes\n\n"
"The offsets of the newlines of buf as native int64 values (read them with numpy.frombuffer).");

static PyObject *line_ends(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    const char *base = (const char *)buf.buf;
    Py_ssize_t len = buf.len, count, i;
    const int little = little_endian();
    Py_BEGIN_ALLOW_THREADS
    count = count_newlines(base, len);
    Py_END_ALLOW_THREADS
    PyObject *out = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    int64_t *dst = (int64_t *)PyBytes_AS_STRING(out);
    Py_ssize_t k = 0;
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; little && i + 8 <= len; i += 8) {
        uint64_t t = newline_bits(load_word(base + i));
        while (t) {
            dst[k++] = i + (lowest_bit(t) >> 3);
            t &= t - 1;
        }
    }
    for (; i < len; i++)
        if (base[i] == '\n') dst[k++] = i;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    return out;
}

/* ---- a clean chunk's trades in common scales, and its minutes aggregated ------------------------------------------ */

#define SAFE ((int64_t)1 << 62) /* values whose products and sums stay below this fit int64 (trades.py: _SAFE) */
#define MINUTE_MS 60000


/* a * max(b, 1) < SAFE for a, b >= 0, without overflow (trades.py: _mul's test) */
static int product_safe(int64_t a, int64_t b) {
    if (b < 1) b = 1;
    return a <= (SAFE - 1) / b;
}

/* Bring mantissas to the largest scale (top; low the smallest, biggest the largest mantissa) as trades.normalize
 * does, and the largest value after it; 0 when normalize would need Python ints. */
static int normalize(const int64_t *m, const int64_t *s, Py_ssize_t n, int64_t top, int64_t low, int64_t biggest,
                     int64_t *out, int64_t *max_out) {
    if (top != low) {
        if (top > 18 || low < 0 || !product_safe(biggest, POW10[top - low])) return 0;
        biggest = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            out[i] = m[i] * POW10[top - s[i]];
            if (out[i] > biggest) biggest = out[i];
        }
    } else {
        memcpy(out, m, n * sizeof(int64_t));
    }
    *max_out = biggest;
    return 1;
}

enum { S_MINUTE = 0, S_START, S_FIRST, S_LAST, S_HIGH, S_LOW, S_BUY_QUOTE, S_QUOTE, S_BUY_BASE, S_BASE, S_BUY_SZ, S_SZ,
       N_SEGMENT_COLUMNS };

/* the aggregates of the minute being summed, kept in locals while it lasts */
typedef struct {
    int64_t first, last, high, low, buy_quote, quote, buy_base, base, buy_sz, sz;
} minute_t;

/* a finished minute into column j of the segments */
static void store_minute(int64_t **seg, Py_ssize_t j, const minute_t *m) {
    seg[S_FIRST][j] = m->first;
    seg[S_LAST][j] = m->last;
    seg[S_HIGH][j] = m->high;
    seg[S_LOW][j] = m->low;
    seg[S_BUY_QUOTE][j] = m->buy_quote;
    seg[S_QUOTE][j] = m->quote;
    seg[S_BUY_BASE][j] = m->buy_base;
    seg[S_BASE][j] = m->base;
    seg[S_BUY_SZ][j] = m->buy_sz;
    seg[S_SZ][j] = m->sz;
}

PyDoc_STRVAR(summarize_doc,
"summarize(ts, ids, count, is_buy, px_m, px_s, sz_m, sz_s, ct_m, spot, px, sz, base, quote, first_id, segments,\n"
"          opaque=False)\n"
"    -> (px_scale, sz_scale, minutes) or None\n\n"
"For a chunk whose trade ids strictly increase with no gap between records and whose minutes never go back\n"
"(the common case), write what stream.TradeStream computes with numpy: prices and sizes in the chunk's\n"
"largest scales (px, sz), base and quote quantities (spot: base = sz; linear: base = sz * ct_m), first ids,\n"
"and per minute the rows of segments (int64, 12 x n: minute, start row, first and last row by (ts, id),\n"
"high, low, buy and total quote, base and size). None when the chunk is not clean, or when a value or a\n"
"sum could leave int64 (the numpy path then works with Python ints). With opaque (ids that are digests of\n"
"text ids, Bybit's), ids are not judged: clean is minutes never going back, the first ids are the ids.");

static PyObject *summarize(PyObject *self, PyObject *args) {
    PyObject *o[16];
    long long ct_m;
    int spot, opaque = 0;
    if (!PyArg_ParseTuple(args, "OOOOOOOOLpOOOOOO|p", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &ct_m,
                          &spot, &o[8], &o[9], &o[10], &o[11], &o[12], &o[13], &opaque))
        return NULL;
    Py_buffer b[14];
    int got = 0;
    PyObject *result = NULL;
    Py_ssize_t n = -1;
    for (; got < 14; got++) {
        int writable = got >= 8;
        if (PyObject_GetBuffer(o[got], &b[got], PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) goto done;
        Py_ssize_t item = got == 3 ? 1 : (Py_ssize_t)sizeof(int64_t);
        Py_ssize_t rows = b[got].len / item;
        if (got == 13) rows /= N_SEGMENT_COLUMNS;
        if (got == 0) n = rows;
        if (rows < n) {
            PyErr_SetString(PyExc_ValueError, "summarize: a column is shorter than ts");
            got++;
            goto done;
        }
    }
    const int64_t *ts = b[0].buf, *ids = b[1].buf, *count = b[2].buf, *px_m = b[4].buf, *px_s = b[5].buf,
                  *sz_m = b[6].buf, *sz_s = b[7].buf;
    const uint8_t *is_buy = b[3].buf;
    int64_t *px = b[8].buf, *sz = b[9].buf, *base = b[10].buf, *quote = b[11].buf, *first_id = b[12].buf;
    int64_t *seg[N_SEGMENT_COLUMNS];
    for (int c = 0; c < N_SEGMENT_COLUMNS; c++) seg[c] = (int64_t *)b[13].buf + (Py_ssize_t)c * n;
    int ok = n > 0 && ct_m > 0;
    int64_t px_top = 0, sz_top = 0, px_max = 0, sz_max = 0;
    Py_ssize_t k = 0;

    Py_BEGIN_ALLOW_THREADS
    /* One pass over the parsed columns: clean (positive counts and times; ids strictly increasing and each record's
       first id at most one past the previous id, so no duplicate and no gap; minutes never going back, so no late
       trade), and the range of the price and size scales with their largest mantissas. */
    int64_t minute_start = 0; /* the first ms of the minute of the trade before (minutes divide only when they change) */
    int64_t px_hi = ok ? px_s[0] : 0, px_lo = px_hi, sz_hi = ok ? sz_s[0] : 0, sz_lo = sz_hi, px_big = 0, sz_big = 0;
    for (Py_ssize_t i = 0; ok && i < n; i++) {
        if (count[i] < 1 || ts[i] < 0 || ids[i] < (opaque ? 0 : 1) || (opaque && count[i] != 1)) ok = 0;
        else if (i > 0 && ts[i] < minute_start) ok = 0;
        else if (i > 0 && !opaque && (ids[i] <= ids[i - 1] || ids[i] - (count[i] - 1) > ids[i - 1] + 1)) ok = 0;
        else if (i == 0 || ts[i] >= minute_start + MINUTE_MS)
            minute_start = ts[i] - ts[i] % MINUTE_MS;
        if (px_s[i] > px_hi) px_hi = px_s[i];
        if (px_s[i] < px_lo) px_lo = px_s[i];
        if (sz_s[i] > sz_hi) sz_hi = sz_s[i];
        if (sz_s[i] < sz_lo) sz_lo = sz_s[i];
        if (px_m[i] > px_big) px_big = px_m[i];
        if (sz_m[i] > sz_big) sz_big = sz_m[i];
    }
    if (ok) ok = normalize(px_m, px_s, n, px_hi, px_lo, px_big, px, &px_max) &&
                 normalize(sz_m, sz_s, n, sz_hi, sz_lo, sz_big, sz, &sz_max);
    px_top = px_hi;
    sz_top = sz_hi;
    int64_t base_max = sz_max;
    if (ok && !spot) {
        ok = product_safe(sz_max, ct_m);
        base_max = sz_max * (ok ? ct_m : 0);
    }
    ok = ok && product_safe(px_max, base_max) && product_safe(base_max, n) && product_safe(px_max * base_max, n);
    if (ok) {
        /* a second pass: base and quote, first ids, and each minute's aggregates, kept in locals while its minute
           lasts (minutes never go back in a clean chunk) and written when the next one starts */
        int64_t minute_end = 0; /* one past the last ms of the open segment's minute */
        minute_t open = {0};
        for (Py_ssize_t i = 0; i < n; i++) {
            const int64_t b = spot ? sz[i] : sz[i] * ct_m, q = px[i] * b, t = ts[i];
            base[i] = b;
            quote[i] = q;
            first_id[i] = ids[i] - (count[i] - 1);
            if (i == 0 || t >= minute_end) {
                if (k) { /* the segment before, complete */
                    store_minute(seg, k - 1, &open);
                }
                int64_t minute = t / MINUTE_MS;
                minute_end = (minute + 1) * MINUTE_MS;
                seg[S_MINUTE][k] = minute;
                seg[S_START][k] = i;
                k++;
                open = (minute_t){.first = i, .last = i, .high = px[i], .low = px[i]};
            }
            /* the earliest and the latest (ts, id); where ids increase with the row (all but opaque ones), the
               first row of the smallest ts and the last row of the largest */
            if (t < ts[open.first] || (t == ts[open.first] && ids[i] < ids[open.first])) open.first = i;
            if (t > ts[open.last] || (t == ts[open.last] && ids[i] > ids[open.last])) open.last = i;
            if (px[i] > open.high) open.high = px[i];
            if (px[i] < open.low) open.low = px[i];
            open.quote += q;
            open.base += b;
            open.sz += sz[i];
            if (is_buy[i]) {
                open.buy_quote += q;
                open.buy_base += b;
                open.buy_sz += sz[i];
            }
        }
        if (k) store_minute(seg, k - 1, &open);
    }
    Py_END_ALLOW_THREADS

    if (ok) result = Py_BuildValue("(LLn)", (long long)px_top, (long long)sz_top, k);
    else result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&b[i]);
    return result;
}

PyDoc_STRVAR(split_pushes_doc,
"split_pushes(buf, head, marker) -> (items, counts) or None\n\n"
"Cut pushes that each hold an array of flat trade objects (Bybit's publicTrade) into one trade a line.\n"
"Every line of buf (each ending in '\\n') must be head, one or more digits, marker (such as ',\"data\":['),\n"
"a non-empty body and ']}'; items is the bodies, each followed by '\\n', with every '},{\"T\":' in them\n"
"made '}\\n{\"T\":', and counts the trades of each line as native int64 values. None when a line is not in\n"
"that shape (the caller reads the chunk another way).");

static PyObject *split_pushes(PyObject *self, PyObject *args) {
    Py_buffer buf, head, marker;
    if (!PyArg_ParseTuple(args, "y*y*y*", &buf, &head, &marker)) return NULL;
    const char *base = (const char *)buf.buf, *limit = base + buf.len;
    const char *h = (const char *)head.buf, *m = (const char *)marker.buf;
    const Py_ssize_t hn = head.len, mn = marker.len;
    PyObject *result = NULL, *items = NULL, *counts = NULL;
    Py_ssize_t lines = 0, total = 0;
    int fits = buf.len > 0 && base[buf.len - 1] == '\n' && hn > 0 && mn > 0;
    /* first pass: the shape of every line, and the bytes and lines of the result */
    Py_BEGIN_ALLOW_THREADS
    for (const char *p = base; fits && p < limit;) {
        const char *e = memchr(p, '\n', limit - p); /* not NULL: buf ends with '\n' */
        const char *q = p + hn;
        if (e - p < hn + 1 + mn + 3 || memcmp(p, h, hn) != 0) { fits = 0; break; }
        while (q < e && *q >= '0' && *q <= '9') q++;
        if (q == p + hn || e - q < mn + 3 || memcmp(q, m, mn) != 0 || e[-1] != '}' || e[-2] != ']') { fits = 0; break; }
        total += (e - 2) - (q + mn) + 1;
        lines++;
        p = e + 1;
    }
    Py_END_ALLOW_THREADS
    if (!fits) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    items = PyBytes_FromStringAndSize(NULL, total);
    counts = PyBytes_FromStringAndSize(NULL, lines * (Py_ssize_t)sizeof(int64_t));
    if (items == NULL || counts == NULL) goto done;
    char *dst = PyBytes_AS_STRING(items);
    int64_t *count = (int64_t *)PyBytes_AS_STRING(counts);
    static const char SPLIT[] = "},{\"T\":";
    Py_BEGIN_ALLOW_THREADS /* the new objects are seen by no one else yet */
    Py_ssize_t k = 0;
    for (const char *p = base; p < limit; k++) {
        const char *e = memchr(p, '\n', limit - p);
        const char *q = p + hn;
        while (*q >= '0' && *q <= '9') q++;
        const char *a = q + mn, *b = e - 2;
        memcpy(dst, a, b - a);
        int64_t n = 1;
        for (char *c = dst, *end = dst + (b - a); (c = memchr(c, '}', end - c)) != NULL; c++) {
            if (end - c >= (Py_ssize_t)sizeof(SPLIT) - 1 && memcmp(c, SPLIT, sizeof(SPLIT) - 1) == 0) {
                c[1] = '\n';
                n++;
            }
        }
        dst += b - a;
        *dst++ = '\n';
        count[k] = n;
        p = e + 1;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(OO)", items, counts);
done:
    Py_XDECREF(items);
    Py_XDECREF(counts);
    PyBuffer_Release(&marker);
    PyBuffer_Release(&head);
    PyBuffer_Release(&buf);
    return result;
}

static PyMethodDef methods[] = {
    {"parse_layout", parse_layout, METH_VARARGS, parse_layout_doc},
    {"line_ends", line_ends, METH_VARARGS, line_ends_doc},
    {"count_lines", count_lines, METH_VARARGS, count_lines_doc},
    {"take_lines", take_lines, METH_VARARGS, take_lines_doc},
    {"summarize", summarize, METH_VARARGS, summarize_doc},
    {"split_pushes", split_pushes, METH_VARARGS, split_pushes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "indicator_core._native_trades",
    "The compiled kernel of the trade parser (optional; the numpy path gives the same results).", -1, methods,
};

PyMODINIT_FUNC PyInit__native_trades(void) { return PyModule_Create(&module); }
