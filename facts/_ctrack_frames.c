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
 */
#include "_ctrack.h"

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
        if (d)
            s.direction = (uint8_t)d;   /* decode(): the record's direction, else SLL's */
        s.frame = frame;
        s.ts = ts;
        if (!t->has_ts) {
            t->first_ts = ts;
            t->has_ts = 1;
        }
        t->last_ts = ts;
        r = feed_seg(t, &s, pl, pllen, NULL) < 0 ? -1 : 1;
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
    if (!o)
        return -1;
    r = o == Py_None ? 0 : feed_obj(t, o) < 0 ? -1 : 1;
    Py_DECREF(o);
    if (r < 0 && !PyErr_Occurred())
        PyErr_NoMemory();
    return r;
}

static int call_tick(PyObject *tick)
{
    PyObject *x = PyObject_CallNoArgs(tick);
    if (!x)
        return -1;
    Py_DECREF(x);
    return 0;
}

PyObject *track_frames(PyObject *self, PyObject *args)
{
    (void)self;
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
