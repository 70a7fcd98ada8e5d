/* records(kept, frame, ctx, cap) -> iterator of records
 * The records of a list the fold kept (etl_fastc.fused_c's records mode), made one at a
 * time as the reader takes them, instead of a Python loop step per record. kept holds
 * compact items (ts, key, app, code, dir, orig, start, end, body, extra), frames
 * frame+1, frame+2, ...; ctx is (linear, whole_seconds, tick_offset, seconds,
 * ndis_linktypes, ndis_directions, pktmon_directions, link_types), the batch context that
 * _ctrack.track_frame_batches reads too. Each item becomes
 *   (frame, ts, linktype, data, max(orig, len(data)), direction)
 * exactly as fused_c's Python loop makes it: key None (NDIS) takes linktype and direction
 * from the NDIS tables by code and dir, else (pktmon) the linktype is code and the
 * direction pktmon_directions[dir]; ts is whole_seconds + (ts + tick_offset) / 1e7 on a
 * linear clock, else seconds(ts); data is extra, or body[start:end] when extra is None.
 * Each linktype goes into link_types, and cap.records_read is each record's frame once it
 * is handed out (what a progress tick reads while the records are consumed). */
#include "_etlwalk.h"
#include "../_etl_item.h"

typedef struct {
    PyObject_HEAD
    PyObject *items, *ctx, *cap;    /* ctx's objects below are borrowed from ctx */
    PyObject *seconds, *ndis_lts, *ndis_dirs, *pm_dirs, *link_types, *last_lt;
    Py_ssize_t i;
    long long frame, tick_off;
    double whole_s;
    int linear;
} Records;

static PyObject *records_read_name;

/* The record of item it as frame number frame (a new reference). */
static PyObject *record_of(Records *r, PyObject *it, long long frame)
{
    if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 10) {
        PyErr_SetString(PyExc_TypeError, "records: an item is a tuple of 10");
        return NULL;
    }
    PyObject *orig = PyTuple_GET_ITEM(it, 5), *extra = PyTuple_GET_ITEM(it, 9);
    PyObject *lt = NULL, *dir = NULL, *ts = NULL, *data = NULL, *olen = NULL, *fo = NULL, *rec;
    double seconds;
    if (etl_kind(it, r->ndis_lts, r->ndis_dirs, r->pm_dirs, &lt, &dir) < 0)
        goto fail;
    /* the set is told each change of linktype, as the Python loop tells it */
    if (r->last_lt != lt) {
        int same = r->last_lt ? PyObject_RichCompareBool(r->last_lt, lt, Py_EQ) : 0;
        if (same < 0 || (!same && PySet_Add(r->link_types, lt) < 0))
            goto fail;
        Py_XSETREF(r->last_lt, Py_NewRef(lt));
    }
    if (etl_seconds(PyTuple_GET_ITEM(it, 0), r->linear, r->whole_s, r->tick_off, r->seconds,
                    &seconds) < 0 || !(ts = PyFloat_FromDouble(seconds)))
        goto fail;
    if (extra != Py_None)
        data = Py_NewRef(extra);
    else {
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 6)),
                   end = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 7));
        if (PyErr_Occurred())
            goto fail;
        data = PySequence_GetSlice(PyTuple_GET_ITEM(it, 8), start, end);
        if (!data)
            goto fail;
    }
    Py_ssize_t n = PyObject_Length(data);
    if (n < 0)
        goto fail;
    /* max(orig, len(data)): an int orig itself when not less (equal values when equal),
     * so that the usual whole frame makes no int */
    if (PyLong_CheckExact(orig)) {
        int ovf;
        long long o = PyLong_AsLongLongAndOverflow(orig, &ovf);
        if (o == -1 && PyErr_Occurred())
            goto fail;
        if (ovf > 0 || (!ovf && o >= n))
            olen = Py_NewRef(orig);
        else if (!(olen = PyLong_FromSsize_t(n)))
            goto fail;
    } else {
        if (!(olen = PyLong_FromSsize_t(n)))
            goto fail;
        int more = PyObject_RichCompareBool(orig, olen, Py_GT);
        if (more < 0)
            goto fail;
        if (more)
            Py_SETREF(olen, Py_NewRef(orig));
    }
    if (!(fo = PyLong_FromLongLong(frame)) || PyObject_SetAttr(r->cap, records_read_name, fo) < 0)
        goto fail;
    if (!(rec = PyTuple_New(6)))
        goto fail;
    PyTuple_SET_ITEM(rec, 0, fo);
    PyTuple_SET_ITEM(rec, 1, ts);
    PyTuple_SET_ITEM(rec, 2, lt);
    PyTuple_SET_ITEM(rec, 3, data);
    PyTuple_SET_ITEM(rec, 4, olen);
    PyTuple_SET_ITEM(rec, 5, dir);
    return rec;
fail:
    Py_XDECREF(lt);
    Py_XDECREF(dir);
    Py_XDECREF(ts);
    Py_XDECREF(data);
    Py_XDECREF(olen);
    Py_XDECREF(fo);
    return NULL;
}

static PyObject *records_next(Records *r)
{
    if (!r->items)
        return NULL;
    if (r->i >= PyList_GET_SIZE(r->items)) {
        Py_CLEAR(r->items);
        return NULL;
    }
    PyObject *it = PyList_GET_ITEM(r->items, r->i);
    r->i++;
    return record_of(r, it, ++r->frame);
}

static int records_traverse(Records *r, visitproc visit, void *arg)
{
    Py_VISIT(r->items);
    Py_VISIT(r->ctx);
    Py_VISIT(r->cap);
    Py_VISIT(r->last_lt);
    return 0;
}

static int records_clear(Records *r)
{
    Py_CLEAR(r->items);
    Py_CLEAR(r->ctx);
    Py_CLEAR(r->cap);
    Py_CLEAR(r->last_lt);
    return 0;
}

static void records_dealloc(Records *r)
{
    PyObject_GC_UnTrack(r);
    records_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

PyTypeObject RecordsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "facts.capture._etlwalk.Records",
    .tp_basicsize = sizeof(Records),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The records of a kept list (see records).",
    .tp_dealloc = (destructor)records_dealloc,
    .tp_traverse = (traverseproc)records_traverse,
    .tp_clear = (inquiry)records_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)records_next,
};

PyObject *records(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *items, *ctx, *cap;
    long long frame;
    if (!PyArg_ParseTuple(args, "O!LO!O", &PyList_Type, &items, &frame, &PyTuple_Type, &ctx,
                          &cap))
        return NULL;
    if (PyTuple_GET_SIZE(ctx) != 8 || !PySet_Check(PyTuple_GET_ITEM(ctx, 7))) {
        PyErr_SetString(PyExc_TypeError, "records: ctx is a tuple of 8, a set last");
        return NULL;
    }
    if (!records_read_name && !(records_read_name = PyUnicode_InternFromString("records_read")))
        return NULL;
    int linear = PyObject_IsTrue(PyTuple_GET_ITEM(ctx, 0));
    double whole_s = PyFloat_AsDouble(PyTuple_GET_ITEM(ctx, 1));
    long long tick_off = PyLong_AsLongLong(PyTuple_GET_ITEM(ctx, 2));
    if (linear < 0 || PyErr_Occurred())
        return NULL;
    Records *r = PyObject_GC_New(Records, &RecordsType);
    if (!r)
        return NULL;
    r->items = Py_NewRef(items);
    r->ctx = Py_NewRef(ctx);
    r->cap = Py_NewRef(cap);
    r->seconds = PyTuple_GET_ITEM(ctx, 3);
    r->ndis_lts = PyTuple_GET_ITEM(ctx, 4);
    r->ndis_dirs = PyTuple_GET_ITEM(ctx, 5);
    r->pm_dirs = PyTuple_GET_ITEM(ctx, 6);
    r->link_types = PyTuple_GET_ITEM(ctx, 7);
    r->last_lt = NULL;
    r->i = 0;
    r->frame = frame;
    r->tick_off = tick_off;
    r->whole_s = whole_s;
    r->linear = linear;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}
