/* The compact ETL item as both compiled consumers read it: facts._ctrack's
 * track_frame_batches (records straight into the tracker) and facts.capture._etlwalk's
 * records iterator (records for Python). An item is etl_fastc's tuple
 *   (ts, key, app, code, dir, orig, start, end, body, extra)
 * read with a batch context (linear, whole_seconds, tick_offset, seconds, ndis_linktypes,
 * ndis_directions, pktmon_directions, link_types); both must turn it into exactly what
 * etl_fastc.fused_c's Python loop makes, so the rules live here once. Header-only (static
 * inline): the two extensions share no object code. */
#ifndef RSTSLEUTH_ETL_ITEM_H
#define RSTSLEUTH_ETL_ITEM_H

#include <Python.h>

/* table[key] as Python indexes it (a new reference); a tuple by a small int directly. */
static inline PyObject *etl_lookup(PyObject *table, PyObject *key)
{
    if (PyTuple_CheckExact(table) && PyLong_CheckExact(key)) {
        Py_ssize_t k = PyLong_AsSsize_t(key);
        if (k >= 0 && k < PyTuple_GET_SIZE(table))
            return Py_NewRef(PyTuple_GET_ITEM(table, k));
        PyErr_Clear();
    }
    return PyObject_GetItem(table, key);
}

/* The item's link type and direction (new references): by code and dir from the NDIS tables
 * when its key is None, else (pktmon) code itself and pktmon_directions[dir]. -1 on error. */
static inline int etl_kind(PyObject *it, PyObject *ndis_lts, PyObject *ndis_dirs,
                           PyObject *pm_dirs, PyObject **lt, PyObject **dir)
{
    PyObject *code = PyTuple_GET_ITEM(it, 3), *dco = PyTuple_GET_ITEM(it, 4);
    if (PyTuple_GET_ITEM(it, 1) == Py_None) {
        *lt = etl_lookup(ndis_lts, code);
        *dir = *lt ? etl_lookup(ndis_dirs, dco) : NULL;
    } else {
        *lt = Py_NewRef(code);
        *dir = etl_lookup(pm_dirs, dco);
    }
    if (!*dir) {
        Py_CLEAR(*lt);
        return -1;
    }
    return 0;
}

/* The item's time in seconds: whole_s + (ts + tick_off) / 1e7 on a linear clock, else
 * seconds(ts), as Python computes either (int / float: the int converted to the nearest
 * double, which the cast does; past int64 through Python's own integers). -1 on error. */
static inline int etl_seconds(PyObject *ts, int linear, double whole_s, long long tick_off,
                              PyObject *seconds, double *out)
{
    PyObject *x = NULL;
    if (linear) {
        int ovf;
        long long raw = PyLong_AsLongLongAndOverflow(ts, &ovf), sum;
        if (raw == -1 && PyErr_Occurred()) {
            PyErr_Clear();  /* not an int: Python's own arithmetic below */
            ovf = 1;
        }
        if (!ovf && !__builtin_add_overflow(raw, tick_off, &sum)) {
            *out = whole_s + (double)sum / 1e7;
            return 0;
        }
        PyObject *off = PyLong_FromLongLong(tick_off), *s = NULL;
        if (off && (s = PyNumber_Add(ts, off))) {
            double v = PyLong_AsDouble(s);
            if (!(v == -1.0 && PyErr_Occurred()))
                x = PyFloat_FromDouble(whole_s + v / 1e7);
        }
        Py_XDECREF(off);
        Py_XDECREF(s);
    } else {
        x = PyObject_CallOneArg(seconds, ts);
    }
    if (!x)
        return -1;
    *out = PyFloat_AsDouble(x);
    Py_DECREF(x);
    return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

#endif
