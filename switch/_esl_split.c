/* switch._esl_split: the optional C accelerator of switch/codec.py (issue 15 item 8).
 *
 * Why C: the aim is a full ESL parse at least twice as fast as greenswitch's reader (bench/esl_parse.py).
 * greenswitch itself is the 1x, and the pure-Python codec stops at about 1.5x: of the 19.5 us an event the
 * aim allows, about 12 go on splitting its ~93 "Key: value" lines and building the dict (186 new strings and
 * 93 inserts made by CPython's string operations), whatever whole-block tricks are used.  This module does
 * only that hot part: split_block(block) is switch.codec._split_regular_block in C, the same dict for a
 * block shaped as FreeSWITCH writes it and None for any other block, which then takes the Python path
 * (which reports what is wrong).  Framing, caps and every check stay in Python; the Python function stays
 * the reference and the fallback where this module is not built (`make setup` builds it with gcc and the
 * Python headers: scripts/build-codec.sh).
 *
 * A regular block (all must hold, else None):
 *   - ASCII, no NUL, no '=' or CR anywhere, at most 4096 lines, not ending with a newline;
 *   - every line is NAME ": " VALUE: NAME non-empty without ':', ' ', '%'; VALUE without ':' or ' ';
 *   - every '%' in a VALUE is followed by two hex digits, and none encodes NUL.
 * Values are URL-decoded, then read as UTF-8 with U+FFFD for bad sequences (as bytes.decode("utf-8",
 * "replace")); a later line of the same name replaces the value of an earlier one (as dict(zip(...))).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_LINES 4096

/* Character classes: a name byte may be anything ASCII but NUL, '\n', '\r', ' ', ':', '%', '='; a value
 * byte the same but '%' (an escape) and '\n' (the line's end, handled by the loop). */
enum { NAME_OK = 1, VALUE_OK = 2 };
static unsigned char char_class[256];
static signed char hex_value[256];

static void
init_tables(void)
{
    for (int c = 0; c < 256; c++) {
        hex_value[c] = -1;
        if (c == 0 || c >= 0x80 || c == '\n' || c == '\r' || c == ' ' || c == ':' || c == '=')
            continue;
        char_class[c] = (c == '%') ? 0 : (NAME_OK | VALUE_OK);
    }
    for (int c = '0'; c <= '9'; c++)
        hex_value[c] = (signed char)(c - '0');
    for (int c = 'a'; c <= 'f'; c++) {
        hex_value[c] = (signed char)(c - 'a' + 10);
        hex_value[c - 'a' + 'A'] = (signed char)(c - 'a' + 10);
    }
}

/* A str of n ASCII bytes. */
static PyObject *
ascii_str(const unsigned char *data, Py_ssize_t n)
{
    PyObject *text = PyUnicode_New(n, 127);
    if (text != NULL)
        memcpy(PyUnicode_DATA(text), data, (size_t)n);
    return text;
}

/* The value starting at *at (up to the line's end or the block's): its str, *at moved to the line's end.
 * NULL without an exception set: not regular.  `scratch` holds at least as many bytes as the value. */
static PyObject *
read_value(const unsigned char **at, const unsigned char *end, unsigned char *scratch)
{
    const unsigned char *start = *at, *p = start;
    int escapes = 0;
    while (p < end && *p != '\n') {
        if (char_class[*p] & VALUE_OK)
            p++;
        else if (*p == '%' && end - p > 2 && hex_value[p[1]] >= 0 && hex_value[p[2]] >= 0
                 && (p[1] != '0' || p[2] != '0')) {
            escapes = 1;
            p += 3;
        }
        else
            return NULL;
    }
    *at = p;
    if (!escapes)
        return ascii_str(start, p - start);
    unsigned char *out = scratch, high = 0;
    for (const unsigned char *q = start; q < p; q++) {
        unsigned char c = *q;
        if (c == '%') {
            c = (unsigned char)(hex_value[q[1]] << 4 | hex_value[q[2]]);
            q += 2;
        }
        high |= c;
        *out++ = c;
    }
    if (high < 0x80)
        return ascii_str(scratch, out - scratch);
    return PyUnicode_DecodeUTF8((const char *)scratch, out - scratch, "replace");
}

/* The dict of a regular block, Py_None for another block, NULL with an exception set on failure. */
static PyObject *
split(const unsigned char *p, Py_ssize_t size)
{
    const unsigned char *end = p + size;
    unsigned char *scratch = NULL;
    PyObject *headers = PyDict_New();
    if (headers == NULL)
        return NULL;
    if (size == 0)
        goto irregular;
    if (memchr(p, '%', (size_t)size) != NULL) {
        /* decoded values are never longer than the block */
        scratch = PyMem_Malloc((size_t)size);
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto failed;
        }
    }
    for (int lines = 1;; lines++) {
        if (lines > MAX_LINES)
            goto irregular;
        const unsigned char *name = p;
        while (p < end && (char_class[*p] & NAME_OK))
            p++;
        if (p == name || end - p < 2 || p[0] != ':' || p[1] != ' ')
            goto irregular;
        PyObject *key = ascii_str(name, p - name);
        if (key == NULL)
            goto failed;
        p += 2;
        PyObject *value = read_value(&p, end, scratch);
        if (value == NULL) {
            Py_DECREF(key);
            if (PyErr_Occurred())
                goto failed;
            goto irregular;
        }
        int stored = PyDict_SetItem(headers, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (stored < 0)
            goto failed;
        if (p == end)
            break;
        p++;                                    /* the newline; a block ending with one is irregular */
    }
    PyMem_Free(scratch);
    return headers;
irregular:
    PyMem_Free(scratch);
    Py_DECREF(headers);
    Py_RETURN_NONE;
failed:
    PyMem_Free(scratch);
    Py_DECREF(headers);
    return NULL;
}

static PyObject *
split_block(PyObject *Py_UNUSED(module), PyObject *block)
{
    Py_buffer view;
    if (PyObject_GetBuffer(block, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = split((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"split_block", split_block, METH_O,
     "split_block(block) -> dict | None: the headers of a regular header block (bytes-like) exactly as\n"
     "switch.codec._split_regular_block gives them, None for any other block."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "switch._esl_split",
    "ESL header-block split and URL-decoding in C: switch.codec's optional accelerator (see switch/_esl_split.c).",
    0, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__esl_split(void)
{
    init_tables();
    return PyModule_Create(&module_def);
}
