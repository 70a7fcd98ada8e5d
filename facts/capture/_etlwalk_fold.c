/* fold(items, i, frame, live, older, generation_start, window, dirs)
 * The fold of the compiled readers' loop (etl_fastc) for a list of walk items in time order,
 * from index i: a whole NDIS packet (key None) is kept; a pktmon copy (key > 3) is folded
 * exactly as fold_records folds it -- a later copy (AppearanceCount above the one
 * remembered for its key, in live or else older) updates the memory and is dropped, any
 * other becomes the next frame and is remembered in live, which rolls over to older once
 * the copy is more than window after generation_start. The first item of walk_buffer's
 * general form (key 1-3) stops the fold: i is then its index, else len(items). Returns
 * (kept, i, frame, live, older, generation_start); the kept items are frames frame+1,
 * frame+2, ... in order.
 * A packet is remembered as one int, AppearanceCount | direction code << 16 | frame << 19
 * (etl.remembered reads it back as fold_records' (AppearanceCount, frame, direction)
 * tuple, dirs[code] the direction): no tuple and frame int per packet. Values that do not
 * fit (never from a walk: AppearanceCount is 16 bits) are remembered as that tuple. */
#include "_etlwalk.h"

#define APP_MASK 0xFFFFLL
#define FRAME_SHIFT 19
#define FRAME_LIMIT (1LL << 44)

/* The AppearanceCount of remembered packet e: an int (see above), a tuple or a list. */
static int memory_app(PyObject *e, long long *app)
{
    PyObject *v;
    if (PyLong_CheckExact(e)) {
        long long m = PyLong_AsLongLong(e);
        if (m == -1 && PyErr_Occurred())
            return -1;
        *app = m & APP_MASK;
        return 0;
    }
    if (PyTuple_Check(e) && PyTuple_GET_SIZE(e) > 0)
        v = PyTuple_GET_ITEM(e, 0);
    else if (PyList_Check(e) && PyList_GET_SIZE(e) > 0)
        v = PyList_GET_ITEM(e, 0);
    else {
        PyErr_SetString(PyExc_TypeError, "fold: a remembered packet must be a tuple or list");
        return -1;
    }
    *app = PyLong_AsLongLong(v);
    return (*app == -1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *remembered(PyObject *app, PyObject *frame, PyObject *direction)
{
    PyObject *t = PyTuple_New(3);
    if (t != NULL) {
        PyTuple_SET_ITEM(t, 0, Py_NewRef(app));
        PyTuple_SET_ITEM(t, 1, Py_NewRef(frame));
        PyTuple_SET_ITEM(t, 2, Py_NewRef(direction));
        PyObject_GC_UnTrack(t);     /* scalars only: see append_item (_etlwalk_walk.c) */
    }
    return t;
}

/* The memory of a packet (a new reference): the int when it fits, else the tuple. */
static PyObject *memory(PyObject *app_obj, long long app, long long frame, PyObject *dirs,
                        Py_ssize_t d)
{
    if (app >= 0 && app <= APP_MASK && frame >= 0 && frame < FRAME_LIMIT)
        return PyLong_FromLongLong(app | (long long)d << 16 | frame << FRAME_SHIFT);
    PyObject *f = PyLong_FromLongLong(frame);
    PyObject *v = f ? remembered(app_obj, f, PyTuple_GET_ITEM(dirs, d)) : NULL;
    Py_XDECREF(f);
    return v;
}

/* Remembered packet e (int, tuple or list) with AppearanceCount app (a new reference). */
static PyObject *later_copy(PyObject *e, PyObject *app_obj, long long app, PyObject *dirs)
{
    if (PyLong_CheckExact(e)) {
        long long m = PyLong_AsLongLong(e);
        if (m == -1 && PyErr_Occurred())
            return NULL;
        Py_ssize_t d = (Py_ssize_t)((m >> 16) & 7);
        return memory(app_obj, app, m >> FRAME_SHIFT, dirs, d);
    }
    PyObject *f, *dir, *v;
    if (PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= 3) {
        f = PyTuple_GET_ITEM(e, 1);
        dir = PyTuple_GET_ITEM(e, 2);
    }
    else if (PyList_Check(e) && PyList_GET_SIZE(e) >= 3) {
        f = PyList_GET_ITEM(e, 1);
        dir = PyList_GET_ITEM(e, 2);
    }
    else {
        PyErr_SetString(PyExc_TypeError, "fold: short remembered packet");
        return NULL;
    }
    Py_INCREF(f);               /* e may go with the store that follows */
    Py_INCREF(dir);
    v = remembered(app_obj, f, dir);
    Py_DECREF(f);
    Py_DECREF(dir);
    return v;
}

PyObject *fold(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *items, *live, *older, *dirs, *kept = NULL, *result = NULL;
    Py_ssize_t i, frame;
    long long gen, window;
    if (!PyArg_ParseTuple(args, "O!nnO!O!LLO!", &PyList_Type, &items, &i, &frame,
                          &PyDict_Type, &live, &PyDict_Type, &older, &gen, &window,
                          &PyTuple_Type, &dirs))
        return NULL;
    if (PyTuple_GET_SIZE(dirs) != 8 || i < 0 || window < 0) {
        PyErr_SetString(PyExc_ValueError, "fold: dirs must hold 8 directions, i and window >= 0");
        return NULL;
    }
    if (i > PyList_GET_SIZE(items))
        i = PyList_GET_SIZE(items);
    Py_INCREF(live);
    Py_INCREF(older);
    if (!(kept = PyList_New(0)))
        goto done;
    for (; i < PyList_GET_SIZE(items); i++) {
        PyObject *it = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) < 2) {
            PyErr_SetString(PyExc_TypeError, "fold: items must be walk tuples");
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(it, 1);
        if (key != Py_None) {
            int ovf;
            if (!PyLong_Check(key))
                break;
            long long k = PyLong_AsLongLongAndOverflow(key, &ovf);
            if (k == -1 && PyErr_Occurred())
                goto done;
            if (ovf < 0 || (ovf == 0 && k <= 3))
                break;                                  /* walk_buffer's general form */
            if (PyTuple_GET_SIZE(it) < 5) {
                PyErr_SetString(PyExc_TypeError, "fold: items must be walk tuples");
                goto done;
            }
            PyObject *app_obj = PyTuple_GET_ITEM(it, 2);
            long long app = PyLong_AsLongLong(app_obj);
            if (app == -1 && PyErr_Occurred())
                goto done;
            Py_ssize_t d = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 4));
            if (d == -1 && PyErr_Occurred())
                goto done;
            long long ts;
            if (as_int64(PyTuple_GET_ITEM(it, 0), &ts) < 0)
                goto done;
            if (d < 0 || d > 7) {
                PyErr_SetString(PyExc_ValueError, "fold: direction code out of range");
                goto done;
            }
            if (app != 1) {
                PyObject *e = PyDict_GetItemWithError(live, key);
                if (e == NULL && !PyErr_Occurred())
                    e = PyDict_GetItemWithError(older, key);
                if (e == NULL && PyErr_Occurred())
                    goto done;
                long long seen;
                if (e != NULL) {
                    if (memory_app(e, &seen) < 0)
                        goto done;
                    if (app > seen) {                   /* a later copy */
                        PyObject *v = later_copy(e, app_obj, app, dirs);
                        if (v == NULL || PyDict_SetItem(live, key, v) < 0) {
                            Py_XDECREF(v);
                            goto done;
                        }
                        Py_DECREF(v);
                        continue;
                    }
                }
            }
            /* ts - gen > window, as Python's exact ints compare it (window >= 0) */
            if (ts > gen && (unsigned long long)ts - (unsigned long long)gen
                    > (unsigned long long)window) {
                PyObject *fresh = PyDict_New();
                if (fresh == NULL)
                    goto done;
                Py_SETREF(older, live);
                live = fresh;
                gen = ts;
            }
            PyObject *v = memory(app_obj, app, frame + 1, dirs, d);
            if (v == NULL || PyDict_SetItem(live, key, v) < 0) {
                Py_XDECREF(v);
                goto done;
            }
            Py_DECREF(v);
        }
        frame++;
        if (PyList_Append(kept, it) < 0)
            goto done;
    }
    result = Py_BuildValue("(OnnOOL)", kept, i, frame, live, older, gen);
done:
    Py_XDECREF(kept);
    Py_DECREF(live);
    Py_DECREF(older);
    return result;
}
