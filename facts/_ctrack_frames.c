/* The compiled tracker over raw frames from any reader (pcapng, ETL, pcap link types without
 * an inline layout): what facts.decode.iter_packets + Tracker.feed do, without a TcpSegment per
 * packet for the frames the pcap path decodes inline.
 *
 * track_frames(records, decode[, tick]) -> state
 *   records: an iterable of reader records, either Capture.records()'s
 *     (frame, ts, linktype, data, origlen, direction)
 *   or pcapng's walk() form, the frame read in place:
 *     (frame, ts, linktype, buf, start, caplen, origlen, direction)
 *   Link types 1/113/276 go through inline_decode (the pcap path's code); a record's own
 *   direction wins over the SLL packet type, as in decode(). Every other frame goes to
 *   decode(linktype, data, frame, ts, origlen, direction), like facts.decode._general.
 *   tick() after every 65536 packets and after a last partial chunk (extract's chunks).
 *
 * track_frame_batches(records, decode[, tick]) -> state
 *   the same, where records may also hand over etl_fastc's batches (see feed_batch): a
 *   list of compact ETL items at a time instead of one generator step per record.
 */
#include "_ctrack.h"
#include "_etl_item.h"

/* A record's direction: 0 None, 1 "in", 2 "out"; -1 with ValueError (what feed_obj would
 * say of the segment the Python decoder makes with it). */
static int record_direction(PyObject *d)
{
    if (d == Py_None)
        return 0;
    if (d == S_IN || (PyUnicode_Check(d) && PyUnicode_Compare(d, S_IN) == 0))
        return 1;
    if (d == S_OUT || (PyUnicode_Check(d) && PyUnicode_Compare(d, S_OUT) == 0))
        return 2;
    if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "unsupported segment direction");
    return -1;
}

static inline void release(Py_buffer *view)
{
    if (view->obj)
        PyBuffer_Release(view);
}

/* One record: 1 a packet was fed, 0 the frame carries none, -1 error. */
static int feed_record(T *t, PyObject *rec, PyObject *decode)
{
    Py_ssize_t nf = PyTuple_Check(rec) ? PyTuple_GET_SIZE(rec) : -1;
    if (nf != 6 && nf != 8) {
        PyErr_SetString(PyExc_TypeError, "track_frames: a record is a tuple of 6 or 8 items");
        return -1;
    }
    PyObject *fo = PyTuple_GET_ITEM(rec, 0), *tso = PyTuple_GET_ITEM(rec, 1),
             *lto = PyTuple_GET_ITEM(rec, 2), *src = PyTuple_GET_ITEM(rec, 3),
             *orig = PyTuple_GET_ITEM(rec, nf - 2), *dir = PyTuple_GET_ITEM(rec, nf - 1);
    long lt = PyLong_AsLong(lto);
    if (lt == -1 && PyErr_Occurred())
        return -1;
    Py_buffer view;
    /* bytes (what the readers hand over) read directly: PyObject_GetBuffer costs a tenth
     * of the pass */
    int isbytes = PyBytes_CheckExact(src);
    if (isbytes) {
        view.buf = PyBytes_AS_STRING(src);
        view.len = PyBytes_GET_SIZE(src);
        view.obj = NULL;
    } else if (PyObject_GetBuffer(src, &view, PyBUF_SIMPLE) < 0)
        return -1;
    const uint8_t *f = view.buf;
    Py_ssize_t n = view.len;
    if (nf == 8) {
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 4)),
                   cap = PyLong_AsSsize_t(PyTuple_GET_ITEM(rec, 5));
        if (PyErr_Occurred()) {
            release(&view);
            return -1;
        }
        if (start < 0 || cap < 0 || start > n || cap > n - start) {
            release(&view);
            PyErr_SetString(PyExc_ValueError, "track_frames: frame outside its buffer");
            return -1;
        }
        f += start;
        n = cap;
    }
    int r;
    Py_ssize_t l3, et;
    Seg s;
    const uint8_t *pl;
    Py_ssize_t pllen;
    if (inline_layout((int)lt, &l3, &et) && inline_decode(f, n, (int)lt, l3, et, &s, &pl, &pllen)) {
        int d = record_direction(dir);
        double ts = PyFloat_AsDouble(tso);
        long long frame = PyLong_AsLongLong(fo);
        if (d < 0 || (ts == -1.0 && PyErr_Occurred()) || (frame == -1 && PyErr_Occurred())) {
            release(&view);
            return -1;
        }
        r = feed_inline(t, &s, frame, ts, d, pl, pllen) < 0 ? -1 : 1;
        release(&view);
        if (r < 0 && !PyErr_Occurred())
            PyErr_NoMemory();
        return r;
    }
    PyObject *data;
    if (nf == 6 && PyBytes_CheckExact(src)) {
        data = src;
        Py_INCREF(data);
    } else
        data = PyBytes_FromStringAndSize((const char *)f, n);
    release(&view);
    if (!data)
        return -1;
    PyObject *o = PyObject_CallFunctionObjArgs(decode, lto, data, fo, tso, orig, dir, NULL);
    Py_DECREF(data);
    return feed_decoded(t, o);
}

/* One frame read in place, with its record's fields as C values: decoded inline when its link
 * type has a layout (no object made), else handed to decode() with the objects made here
 * (lto and dir borrowed; tso a new reference or NULL, stolen; data the frame's bytes or NULL).
 * 1 a packet was fed, 0 none, -1 error. */
static int feed_frame(T *t, const uint8_t *f, Py_ssize_t n, PyObject *lto, long lt, PyObject *dir,
                      int d, long long frame, double ts, PyObject *tso, Py_ssize_t orig,
                      PyObject *data, PyObject *decode)
{
    Py_ssize_t l3, et;
    Seg s;
    const uint8_t *pl;
    Py_ssize_t pllen;
    if (inline_layout((int)lt, &l3, &et) && inline_decode(f, n, (int)lt, l3, et, &s, &pl, &pllen)) {
        Py_XDECREF(tso);
        int r = feed_inline(t, &s, frame, ts, d, pl, pllen) < 0 ? -1 : 1;
        if (r < 0 && !PyErr_Occurred())
            PyErr_NoMemory();
        return r;
    }
    if (!tso && !(tso = PyFloat_FromDouble(ts)))
        return -1;
    PyObject *fo = PyLong_FromLongLong(frame), *oo = PyLong_FromSsize_t(orig);
    if (data)
        Py_INCREF(data);
    else
        data = PyBytes_FromStringAndSize((const char *)f, n);
    PyObject *o = NULL;
    if (fo && oo && data)
        o = PyObject_CallFunctionObjArgs(decode, lto, data, fo, tso, oo, dir, NULL);
    Py_XDECREF(fo);
    Py_XDECREF(oo);
    Py_XDECREF(data);
    Py_DECREF(tso);
    return feed_decoded(t, o);
}

static int call_tick(PyObject *tick);


/* A batch of etl_fastc.fused_c's (its batches mode): (items, frame, ctx), the compact items
 * (ts, key, app, code, dir, orig, start, end, body, extra) its fold kept, frame the number
 * before the first, ctx (linear, whole_seconds, tick_offset, seconds, ndis_linktypes,
 * ndis_directions, pktmon_directions, link_types): each item is the record
 *   (frame + i + 1, ts, linktype, body[start:end], max(orig, end - start), direction)
 * that fused_c's records mode yields (key None: NDIS, linktype and direction by code from
 * the dicts; else pktmon, linktype the code, direction pktmon_directions[dir]; ts
 * whole_seconds + (ts + tick_offset) / 1e7 when linear, else seconds(ts)), each linktype
 * added to link_types. tick() after every 65536th packet, as for records. */
static int feed_batch(T *t, PyObject *batch, PyObject *decode, PyObject *tick, int64_t *npk)
{
    PyObject *items = PyTuple_GET_ITEM(batch, 0), *ctx = PyTuple_GET_ITEM(batch, 2);
    long long frame = PyLong_AsLongLong(PyTuple_GET_ITEM(batch, 1));
    if (frame == -1 && PyErr_Occurred())
        return -1;
    if (!PyList_Check(items) || !PyTuple_Check(ctx) || PyTuple_GET_SIZE(ctx) != 8) {
        PyErr_SetString(PyExc_TypeError, "track_frame_batches: a batch is (list, frame, ctx of 8)");
        return -1;
    }
    int linear = PyObject_IsTrue(PyTuple_GET_ITEM(ctx, 0));
    double whole_s = PyFloat_AsDouble(PyTuple_GET_ITEM(ctx, 1));
    long long tick_off = PyLong_AsLongLong(PyTuple_GET_ITEM(ctx, 2));
    PyObject *seconds = PyTuple_GET_ITEM(ctx, 3), *ndis_lts = PyTuple_GET_ITEM(ctx, 4),
             *ndis_dirs = PyTuple_GET_ITEM(ctx, 5), *pm_dirs = PyTuple_GET_ITEM(ctx, 6),
             *link_types = PyTuple_GET_ITEM(ctx, 7);
    if (linear < 0 || PyErr_Occurred())
        return -1;
    if (!PySet_Check(link_types)) {
        PyErr_SetString(PyExc_TypeError, "track_frame_batches: bad batch context");
        return -1;
    }
    PyObject *last_lto = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *it = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) != 10) {
            PyErr_SetString(PyExc_TypeError, "track_frame_batches: an item is a tuple of 10");
            return -1;
        }
        PyObject *body = PyTuple_GET_ITEM(it, 8), *lto, *dir;
        if (etl_kind(it, ndis_lts, ndis_dirs, pm_dirs, &lto, &dir) < 0)
            return -1;
        /* both held by their tables (the link type also by the item) for this call */
        Py_DECREF(lto);
        Py_DECREF(dir);
        long lt = PyLong_AsLong(lto);
        Py_ssize_t start = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 6)),
                   end = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 7)),
                   orig = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 5));
        if (PyErr_Occurred())
            return -1;
        if (!PyBytes_CheckExact(body)) {
            PyErr_SetString(PyExc_TypeError, "track_frame_batches: an item's body is bytes");
            return -1;
        }
        /* body[start:end] as Python slices it (the walk never goes outside) */
        Py_ssize_t blen = PyBytes_GET_SIZE(body);
        if (start < 0 || end < 0 || start > blen || end > blen) {
            PyErr_SetString(PyExc_ValueError, "track_frame_batches: frame outside its buffer");
            return -1;
        }
        Py_ssize_t n = end > start ? end - start : 0;
        if (lto != last_lto) {
            if (PySet_Add(link_types, lto) < 0)
                return -1;
            last_lto = lto;
        }
        int d = record_direction(dir);
        if (d < 0)
            return -1;
        double ts;
        if (etl_seconds(PyTuple_GET_ITEM(it, 0), linear, whole_s, tick_off, seconds, &ts) < 0)
            return -1;
        PyObject *data = start == 0 && end == blen ? body : NULL;
        int r = feed_frame(t, (const uint8_t *)PyBytes_AS_STRING(body) + start, n, lto, lt, dir,
                           d, frame + i + 1, ts, NULL, orig > n ? orig : n, data, decode);
        if (r < 0)
            return -1;
        if (r && ++*npk % PROGRESS_EVERY == 0 && tick != Py_None && call_tick(tick) < 0)
            return -1;
    }
    return 0;
}

static int call_tick(PyObject *tick)
{
    PyObject *x = PyObject_CallNoArgs(tick);
    if (!x)
        return -1;
    Py_DECREF(x);
    return 0;
}

static PyObject *track(PyObject *args, int batches)
{
    PyObject *iterable, *decode, *tick = Py_None;
    if (!PyArg_ParseTuple(args, "OO|O", &iterable, &decode, &tick))
        return NULL;
    if (!SEGC.cls)
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not called");
    PyObject *it = PyObject_GetIter(iterable), *rec;
    if (!it)
        return NULL;
    T t;
    int64_t npk = 0;
    if (t_init(&t) < 0) {
        Py_DECREF(it);
        t_free(&t);
        return PyErr_NoMemory();
    }
    while ((rec = PyIter_Next(it))) {
        if (batches && PyTuple_Check(rec) && PyTuple_GET_SIZE(rec) == 3) {
            int r = feed_batch(&t, rec, decode, tick, &npk);
            Py_DECREF(rec);
            if (r < 0)
                break;
            continue;
        }
        int r = feed_record(&t, rec, decode);
        Py_DECREF(rec);
        if (r < 0)
            break;
        /* extract's chunks count packets, not records */
        if (r && ++npk % PROGRESS_EVERY == 0 && tick != Py_None && call_tick(tick) < 0)
            break;
    }
    Py_DECREF(it);
    if (!PyErr_Occurred() && npk % PROGRESS_EVERY && tick != Py_None)
        call_tick(tick);
    PyObject *state = PyErr_Occurred() ? NULL : new_state(&t);
    t_free(&t);
    return state;
}

PyObject *track_frames(PyObject *self, PyObject *args)
{
    (void)self;
    return track(args, 0);
}

PyObject *track_frame_batches(PyObject *self, PyObject *args)
{
    (void)self;
    return track(args, 1);
}
