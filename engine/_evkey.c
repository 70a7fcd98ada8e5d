/* engine._evkey: the per-evidence steps of analysis.gather and Reasoner.infer_many in C, for
 * the common case.
 *
 * A capture with thousands of resets normalizes thousands of 90-field evidence sets and
 * keys each by its run class; in Python that was a fifth of the reasoning. normalize and
 * run_key return exactly what the Python code returns (engine.conditions.normalize_evidence,
 * Reasoner.run_key), or None when the evidence holds something only the Python code
 * handles (a tuple or set, a non-finite float, a subclass, a non-number where rules compare
 * numbers, an unhashable value): the caller then runs the Python code. The tests compare
 * both on the KB's own test cases, on random evidence and on a benchmark capture.
 *
 * normalize(evidence: dict) -> dict | None
 *     the items whose value is not None, when every value is exactly an int, bool, str,
 *     list or finite float.
 * merged(first: dict, skip: set, *more: dict) -> dict
 *     first's items whose value is not None and whose key is not in skip, then each of
 *     more's items whose value is not None (analysis.gather's evidence of one reset).
 * run_key(normalized: dict, numeric: tuple[(name, constants: tuple[float])],
 *         others: tuple[name]) -> tuple | None
 *     (positions, values, types): per numeric field 2i below constant i, 2i+1 equal to it,
 *     None when absent; the others' values (None when absent) and their types.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

static int plain(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    if (t == &PyFloat_Type)
        return isfinite(PyFloat_AS_DOUBLE(v));
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyBool_Type || t == &PyList_Type;
}

static PyObject *ek_normalize(PyObject *self, PyObject *evidence)
{
    (void)self;
    if (!PyDict_CheckExact(evidence))
        Py_RETURN_NONE;
    PyObject *out, *k, *v;
    Py_ssize_t pos = 0;
    int nones = 0;
    while (PyDict_Next(evidence, &pos, &k, &v)) {
        if (v == Py_None)
            nones = 1;
        else if (!plain(v))
            Py_RETURN_NONE;
    }
    if (!nones)  /* the common case: a copy of the whole table at once */
        return PyDict_Copy(evidence);
    if (!(out = PyDict_New()))
        return NULL;
    pos = 0;
    while (PyDict_Next(evidence, &pos, &k, &v)) {
        if (v == Py_None)
            continue;
        if (PyDict_SetItem(out, k, v) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

/* bisect.bisect_left(constants, value), and whether constants[i] == value: -1 on error. */
static Py_ssize_t place(PyObject *constants, PyObject *value)
{
    Py_ssize_t lo = 0, hi = PyTuple_GET_SIZE(constants);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        int lt = PyObject_RichCompareBool(PyTuple_GET_ITEM(constants, mid), value, Py_LT);
        if (lt < 0)
            return -1;
        if (lt)
            lo = mid + 1;
        else
            hi = mid;
    }
    int eq = 0;
    if (lo < PyTuple_GET_SIZE(constants)) {
        eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(constants, lo), value, Py_EQ);
        if (eq < 0)
            return -1;
    }
    return 2 * lo + eq;
}

static PyObject *positions(PyObject *d, PyObject *numeric, int *fallback)
{
    Py_ssize_t n = PyTuple_GET_SIZE(numeric);
    PyObject *out = PyTuple_New(n);
    for (Py_ssize_t i = 0; out && i < n; i++) {
        PyObject *spec = PyTuple_GET_ITEM(numeric, i);
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2
            || !PyTuple_Check(PyTuple_GET_ITEM(spec, 1))) {
            PyErr_SetString(PyExc_TypeError, "run_key: numeric is a tuple of (name, tuple)");
            Py_CLEAR(out);
            break;
        }
        PyObject *v = PyDict_GetItemWithError(d, PyTuple_GET_ITEM(spec, 0)), *item;
        if (!v) {
            if (PyErr_Occurred()) {
                Py_CLEAR(out);
                break;
            }
            item = Py_NewRef(Py_None);
        } else if (Py_IS_TYPE(v, &PyFloat_Type) || Py_IS_TYPE(v, &PyLong_Type)) {
            Py_ssize_t p = place(PyTuple_GET_ITEM(spec, 1), v);
            item = p < 0 ? NULL : PyLong_FromSsize_t(p);
        } else {  /* a bool, a string... where rules compare numbers: Python's key */
            *fallback = 1;
            Py_CLEAR(out);
            break;
        }
        if (!item) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *ek_run_key(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *d, *numeric, *others;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyDict_Type, &d, &PyTuple_Type, &numeric,
                          &PyTuple_Type, &others))
        return NULL;
    int fallback = 0;
    PyObject *pos = positions(d, numeric, &fallback);
    if (!pos) {
        if (fallback)
            Py_RETURN_NONE;
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(others);
    PyObject *values = PyTuple_New(n), *types = PyTuple_New(n);
    for (Py_ssize_t i = 0; values && types && i < n; i++) {
        PyObject *v = PyDict_GetItemWithError(d, PyTuple_GET_ITEM(others, i));
        if (!v) {
            if (PyErr_Occurred())
                goto fail;
            v = Py_None;
        } else if (!Py_IS_TYPE(v, &PyUnicode_Type) && !Py_IS_TYPE(v, &PyLong_Type)
                   && !Py_IS_TYPE(v, &PyBool_Type) && !Py_IS_TYPE(v, &PyFloat_Type)) {
            /* a list (unhashable: Python keys it by its repr) or something rarer */
            Py_DECREF(pos);
            Py_DECREF(values);
            Py_DECREF(types);
            Py_RETURN_NONE;
        }
        PyTuple_SET_ITEM(values, i, Py_NewRef(v));
        PyTuple_SET_ITEM(types, i, Py_NewRef((PyObject *)Py_TYPE(v)));
    }
    if (!values || !types)
        goto fail;
    PyObject *key = PyTuple_New(3);
    if (!key)
        goto fail;
    PyTuple_SET_ITEM(key, 0, pos);
    PyTuple_SET_ITEM(key, 1, values);
    PyTuple_SET_ITEM(key, 2, types);
    return key;
fail:
    Py_DECREF(pos);
    Py_XDECREF(values);
    Py_XDECREF(types);
    return NULL;
}

/* merged(first, skip, *more): {k: v for k, v in first.items() if v is not None and k not in
 * skip}, then each of more's items whose value is not None, in order (dict.update: a key
 * already there keeps its place). analysis.gather's evidence of one reset: the RstEvent's
 * fields, its connection's, the dual and cross evidence. */
static PyObject *ek_merged(PyObject *self, PyObject *args)
{
    (void)self;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n < 2 || !PyAnySet_Check(PyTuple_GET_ITEM(args, 1)))
        return PyErr_Format(PyExc_TypeError, "merged(first, skip: set, *more)");
    for (Py_ssize_t i = 0; i < n; i++)
        if (i != 1 && !PyDict_Check(PyTuple_GET_ITEM(args, i)))
            return PyErr_Format(PyExc_TypeError, "merged: argument %zd is not a dict", i + 1);
    PyObject *skip = PyTuple_GET_ITEM(args, 1), *out = PyDict_New(), *k, *v;
    for (Py_ssize_t i = 0; out && i < n; i++) {
        if (i == 1)
            continue;
        Py_ssize_t pos = 0;
        while (PyDict_Next(PyTuple_GET_ITEM(args, i), &pos, &k, &v)) {
            if (v == Py_None)
                continue;
            if (i == 0) {
                int in = PySet_Contains(skip, k);
                if (in < 0) {
                    Py_CLEAR(out);
                    break;
                }
                if (in)
                    continue;
            }
            if (PyDict_SetItem(out, k, v) < 0) {
                Py_CLEAR(out);
                break;
            }
        }
    }
    return out;
}

static PyMethodDef methods[] = {
    {"merged", ek_merged, METH_VARARGS,
     "merged(first, skip, *more) -> dict: first's items not None and not in skip, then "
     "each of more's items not None"},
    {"normalize", ek_normalize, METH_O,
     "normalize(evidence) -> dict, or None when the Python normalization is needed"},
    {"run_key", ek_run_key, METH_VARARGS,
     "run_key(normalized, numeric, others) -> tuple, or None when Python's key is needed"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_evkey", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__evkey(void)
{
    return PyModule_Create(&module);
}
