/* engine._jsonw: compact JSON of report objects, byte for byte what pydantic-core writes,
 * with each object that several entries share written once.
 *
 * A JSON report on 5 000 resets is 25 MB, most of it the same diagnoses, fixes, evidence
 * items and fired rules repeated entry after entry: the report objects share them
 * (engine.reset_entry), but pydantic-core writes every occurrence again (a tenth of
 * analyze). This writer keeps the bytes of each shared model object or list (one whose
 * reference count says something else holds it too) in a cache dict, keyed by its address
 * and holding the object, so the address cannot be reused meanwhile.
 *
 * What it writes itself is only what it can write exactly as pydantic-core does: exact
 * str (escaped as serde_json escapes: quote, backslash, control characters), int, bool,
 * None, finite floats whose repr has no exponent (the shortest round-trip digits, which is
 * what ryu writes too), lists, and the plain models of a spec. Everything else (a subclass,
 * an int in a float field, an exponent, a lone surrogate) goes to the field's own pydantic
 * serializer, given with the spec. The tests compare the two on reports and random values.
 *
 * A spec is a tuple (kind, arg, fallback):
 *   kind  FALLBACK 0, STR 1, INT 2, FLOAT 3, BOOL 4, ANY 5, MODEL 6, LIST 7, OPTIONAL 8
 *   arg   MODEL: (cls, ((field name, b'{"name":' or b',"name":', spec), ...));
 *         LIST and OPTIONAL: the item's / inner spec; otherwise None
 *   fallback  value -> bytes (pydantic's serializer of that annotation)
 *
 * write(values: list, spec, cache: dict) -> bytes
 *     the values as the items of a compact JSON list, without its brackets.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

enum { FALLBACK, STR, INT, FLOAT, BOOL, ANY, MODEL, LIST, OPTIONAL };

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int reserve(Buf *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more)
        cap *= 2;
    char *d = PyMem_Realloc(b->data, (size_t)cap);
    if (!d) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const char *s, Py_ssize_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static int put_bytes(Buf *b, PyObject *bytes)
{
    if (!PyBytes_Check(bytes)) {
        PyErr_SetString(PyExc_TypeError, "a fallback serializer returned something other than bytes");
        return -1;
    }
    return put(b, PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
}

static int fallback(Buf *b, PyObject *spec, PyObject *v)
{
    PyObject *out = PyObject_CallOneArg(PyTuple_GET_ITEM(spec, 2), v);
    if (!out)
        return -1;
    int rc = put_bytes(b, out);
    Py_DECREF(out);
    return rc;
}

static const char HEX[] = "0123456789abcdef";

/* 1 written, 0 not this writer's case (a lone surrogate), -1 error */
static int put_str(Buf *b, PyObject *s)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (!u) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    if (reserve(b, 6 * n + 2) < 0)
        return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = HEX[c >> 4]; *o++ = HEX[c & 15];
        }
    }
    *o++ = '"';
    b->len = o - b->data;
    return 1;
}

/* 1 written, 0 not this writer's case (not finite, or an exponent), -1 error */
static int put_float(Buf *b, double d)
{
    if (!isfinite(d))
        return 0;
    char *r = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (!r)
        return -1;
    int rc = strchr(r, 'e') ? 0 : put(b, r, (Py_ssize_t)strlen(r)) < 0 ? -1 : 1;
    PyMem_Free(r);
    return rc;
}

static int put_int(Buf *b, PyObject *v)
{
    PyObject *s = PyObject_Str(v);
    if (!s)
        return -1;
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    int rc = u ? put(b, u, n) : -1;
    Py_DECREF(s);
    return rc;
}

static int write_value(Buf *b, PyObject *spec, PyObject *v, PyObject *cache);

/* 1 written, 0 not this writer's case, -1 error: what ANY (pydantic's inference) writes */
static int put_any(Buf *b, PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    if (v == Py_None)
        return put(b, "null", 4) < 0 ? -1 : 1;
    if (t == &PyBool_Type)
        return (v == Py_True ? put(b, "true", 4) : put(b, "false", 5)) < 0 ? -1 : 1;
    if (t == &PyLong_Type)
        return put_int(b, v) < 0 ? -1 : 1;
    if (t == &PyFloat_Type)
        return put_float(b, PyFloat_AS_DOUBLE(v));
    if (t == &PyUnicode_Type)
        return put_str(b, v);
    if (t == &PyList_Type) {
        Py_ssize_t mark = b->len;
        if (put(b, "[", 1) < 0)
            return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            if (i && put(b, ",", 1) < 0)
                return -1;
            int rc = put_any(b, PyList_GET_ITEM(v, i));
            if (rc <= 0) {
                b->len = mark;
                return rc;
            }
        }
        return put(b, "]", 1) < 0 ? -1 : 1;
    }
    return 0;
}

static int write_model(Buf *b, PyObject *arg, PyObject *v, PyObject *cache, int *done)
{
    *done = 0;
    PyObject *cls = PyTuple_GET_ITEM(arg, 0), *fields = PyTuple_GET_ITEM(arg, 1);
    if ((PyObject *)Py_TYPE(v) != cls)
        return 0;
    PyObject *dict = PyObject_GenericGetDict(v, NULL);
    if (!dict)
        return -1;
    int rc = 0;
    /* fields unset or extra: pydantic decides */
    if (PyDict_CheckExact(dict) && PyDict_GET_SIZE(dict) == PyTuple_GET_SIZE(fields)) {
        Py_ssize_t mark = b->len;
        rc = 1;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fields) && rc > 0; i++) {
            PyObject *f = PyTuple_GET_ITEM(fields, i);
            PyObject *fv = PyDict_GetItemWithError(dict, PyTuple_GET_ITEM(f, 0));
            if (!fv) {
                rc = PyErr_Occurred() ? -1 : 0;
                b->len = mark;
            } else if (put_bytes(b, PyTuple_GET_ITEM(f, 1)) < 0 ||
                       write_value(b, PyTuple_GET_ITEM(f, 2), fv, cache) < 0) {
                rc = -1;
            }
        }
        if (rc > 0) {
            *done = 1;
            rc = put(b, "}", 1);
        }
    }
    Py_DECREF(dict);
    return rc;
}

static int write_list(Buf *b, PyObject *item, PyObject *v, PyObject *cache, int *done)
{
    *done = 0;
    if (!PyList_CheckExact(v))
        return 0;
    *done = 1;
    if (put(b, "[", 1) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
        if ((i && put(b, ",", 1) < 0) || write_value(b, item, PyList_GET_ITEM(v, i), cache) < 0)
            return -1;
    }
    return put(b, "]", 1);
}

/* A model or list: from the cache when it is shared (some other reference than its
 * holder's), else written; 1 written, 0 not this writer's case, -1 error. */
static int write_container(Buf *b, int kind, PyObject *arg, PyObject *v, PyObject *cache)
{
    int shared = cache != Py_None && Py_REFCNT(v) > 1;
    PyObject *key = NULL;
    if (shared) {
        key = PyLong_FromVoidPtr(v);
        if (!key)
            return -1;
        PyObject *hit = PyDict_GetItemWithError(cache, key);
        if (hit) {
            Py_DECREF(key);
            return put_bytes(b, PyTuple_GET_ITEM(hit, 1)) < 0 ? -1 : 1;
        }
        if (PyErr_Occurred()) {
            Py_DECREF(key);
            return -1;
        }
    }
    Py_ssize_t start = b->len;
    int done;
    int rc = kind == MODEL ? write_model(b, arg, v, cache, &done)
                           : write_list(b, arg, v, cache, &done);
    if (rc < 0 || !done || !shared) {
        Py_XDECREF(key);
        return rc < 0 ? -1 : done;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(b->data + start, b->len - start);
    PyObject *entry = bytes ? PyTuple_Pack(2, v, bytes) : NULL;
    rc = entry ? PyDict_SetItem(cache, key, entry) : -1;
    Py_XDECREF(entry);
    Py_XDECREF(bytes);
    Py_DECREF(key);
    return rc < 0 ? -1 : 1;
}

static int write_value(Buf *b, PyObject *spec, PyObject *v, PyObject *cache)
{
    int kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(spec, 0));
    PyObject *arg = PyTuple_GET_ITEM(spec, 1);
    PyTypeObject *t = Py_TYPE(v);
    int rc = 0;
    switch (kind) {
    case STR:
        rc = t == &PyUnicode_Type ? put_str(b, v) : 0;
        break;
    case INT:
        rc = t == &PyLong_Type ? (put_int(b, v) < 0 ? -1 : 1) : 0;
        break;
    case FLOAT:
        rc = t == &PyFloat_Type ? put_float(b, PyFloat_AS_DOUBLE(v)) : 0;
        break;
    case BOOL:
        rc = t == &PyBool_Type ? put_any(b, v) : 0;
        break;
    case ANY:
        rc = put_any(b, v);
        break;
    case MODEL:
    case LIST:
        rc = write_container(b, kind, arg, v, cache);
        break;
    case OPTIONAL:
        rc = v == Py_None ? (put(b, "null", 4) < 0 ? -1 : 1)
                          : (write_value(b, arg, v, cache) < 0 ? -1 : 1);
        break;
    }
    if (rc < 0)
        return -1;
    return rc ? 0 : fallback(b, spec, v);
}

static PyObject *jw_write(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *values, *spec, *cache;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyList_Type, &values, &PyTuple_Type, &spec, &cache))
        return NULL;
    if (cache != Py_None && !PyDict_CheckExact(cache)) {
        PyErr_SetString(PyExc_TypeError, "write: cache must be a dict or None");
        return NULL;
    }
    Buf b = {NULL, 0, 0};
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        if ((i && put(&b, ",", 1) < 0) ||
            write_value(&b, spec, PyList_GET_ITEM(values, i), cache) < 0) {
            PyMem_Free(b.data);
            return NULL;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    return out;
}

static PyMethodDef methods[] = {
    {"write", jw_write, METH_VARARGS,
     "write(values, spec, cache) -> bytes: the values as compact JSON list items"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonw", NULL, -1, methods};

PyMODINIT_FUNC PyInit__jsonw(void)
{
    return PyModule_Create(&module);
}
