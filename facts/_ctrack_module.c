/* facts.tracker.Tracker fused with the classic-pcap record walk, compiled.
 *
 * track_pcap() walks a classic pcap file exactly like facts.capture.pcap / fastpcap.iter_pcap,
 * decodes inline what fastpcap's inline branch decodes (plus IPv6 carrying TCP straight after
 * the fixed header, as facts.decode does), hands every other frame to the Python decoder, and
 * runs the Tracker's per-packet state machine on C structs, with the GIL released except around
 * Python calls. The pass leaves a State: from it, either the Tracker the Python pass would have
 * left (State.tracker(), for facts.rst) or the facts themselves (State.facts(capture): each
 * Connection with its RstEvents, as facts.rst.iter_built yields them), without a Python object
 * per packet or per tracker record.
 *
 * setup(classes: dict)                      with the classes the objects are made of (the
 *                                           fact models may come in a second call)
 * track_pcap(fd, linktype, big_endian, unit, limit, chunk, decode, progress, size)
 *   -> (state, records_read, bytes_read, warning)
 *   warning: None, ("cut", have, need, frames, header) or ("corrupt", off, incl, rest, frames)
 * track_frames(records, decode[, tick]) -> state   the same over any reader's raw records
 *   (_ctrack_frames.c), decoded inline where pcap's are, else by decode
 * track_pcapng(fd, chunk, decode, tick) -> (state, records, bytes_read, link_types) | (None, ticks)
 *   the pcapng walk of an undamaged file (_ctrack_pcapng.c)
 * track_objects(packets[, tick]) -> state   the same tracker over decoded packet objects;
 *   tick() after every 65536 packets and after a last partial chunk
 * fact_fields() -> (Connection fields, Endpoint fields, RstEvent fields) as built here
 * State.counts() -> (tcp_packets, rst_packets, first_ts, last_ts)
 * State.tracker() -> facts.tracker.Tracker    State.facts(capture) -> iterator of
 *   (Connection, [RstEvent, ...]); either one consumes the state
 */
#include "_ctrack.h"

/* Takes t's contents (t is left empty); NULL on failure, t untouched. */
PyObject *new_state(T *t)
{
    State *s = PyObject_New(State, &StateType);
    if (!s)
        return NULL;
    s->t = *t;
    memset(&s->f, 0, sizeof(F));
    s->done = 0;
    memset(t, 0, sizeof(T));
    return (PyObject *)s;
}

static void state_dealloc(State *s)
{
    facts_free(&s->f);
    t_free(&s->t);
    PyObject_Free(s);
}

static int consumed(State *s)
{
    if (s->done) {
        PyErr_SetString(PyExc_RuntimeError, "the tracker state was already consumed");
        return 1;
    }
    return 0;
}

static PyObject *state_counts(State *s, PyObject *unused)
{
    (void)unused;
    if (consumed(s))
        return NULL;
    T *t = &s->t;
    return Py_BuildValue("(LLNN)", (long long)t->tcp, (long long)t->rst,
                         optf(t->has_ts, t->first_ts), optf(t->has_ts, t->last_ts));
}

static PyObject *state_tracker(State *s, PyObject *unused)
{
    (void)unused;
    if (consumed(s))
        return NULL;
    if (s->f.started)
        return PyErr_Format(PyExc_RuntimeError, "facts() was already called");
    if (!facts_ready())
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not given the fact models");
    s->done = 1;
    PyObject *tracker = build_tracker(&s->t);
    t_free(&s->t);
    return tracker;
}

static PyObject *state_facts(State *s, PyObject *capture)
{
    if (consumed(s))
        return NULL;
    if (!PyUnicode_Check(capture))
        return PyErr_Format(PyExc_TypeError, "facts(capture): a str");
    if (s->f.started)
        return PyErr_Format(PyExc_RuntimeError, "facts() was already called");
    if (!facts_ready())
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not given the fact models");
    if (facts_start(s, capture) < 0)
        return NULL;
    Py_INCREF(s);
    return (PyObject *)s;
}

static PyObject *state_next(State *s)
{
    if (!s->f.started || s->done)
        return NULL;
    PyObject *r = facts_next(s);
    if (!r && !PyErr_Occurred()) {   /* the end: let the state go at once */
        s->done = 1;
        facts_free(&s->f);
        t_free(&s->t);
    }
    return r;
}

static PyMethodDef state_methods[] = {
    {"counts", (PyCFunction)state_counts, METH_NOARGS,
     "(tcp_packets, rst_packets, first_ts, last_ts)"},
    {"tracker", (PyCFunction)state_tracker, METH_NOARGS,
     "the facts.tracker.Tracker of this state (consumes it)"},
    {"facts", (PyCFunction)state_facts, METH_O,
     "facts(capture) -> iterator of (Connection, [RstEvent]) (consumes the state)"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject StateType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "facts._ctrack.State",
    .tp_basicsize = sizeof(State),
    .tp_dealloc = (destructor)state_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A tracker's state after the pass",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)state_next,
    .tp_methods = state_methods,
};

static PyObject *track_objects(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *iterable, *tick = Py_None;
    if (!PyArg_ParseTuple(args, "O|O", &iterable, &tick))
        return NULL;
    if (!SEGC.cls)
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not called");
    PyObject *it = PyObject_GetIter(iterable), *o;
    if (!it)
        return NULL;
    T t;
    int64_t n = 0;
    int r = 0;
    if (t_init(&t) < 0) {
        Py_DECREF(it);
        t_free(&t);
        return PyErr_NoMemory();
    }
    while ((o = PyIter_Next(it))) {
        r = o == Py_None ? 0 : feed_obj(&t, o);
        Py_DECREF(o);
        if (r < 0)
            break;
        /* extract's chunks: tick after every PROGRESS_EVERY packets */
        if (++n % PROGRESS_EVERY == 0 && tick != Py_None) {
            PyObject *x = PyObject_CallNoArgs(tick);
            if (!x) {
                r = -1;
                break;
            }
            Py_DECREF(x);
        }
    }
    Py_DECREF(it);
    if (r < 0 && !PyErr_Occurred())
        PyErr_NoMemory();
    if (!PyErr_Occurred() && n % PROGRESS_EVERY && tick != Py_None) {
        PyObject *x = PyObject_CallNoArgs(tick);
        Py_XDECREF(x);
    }
    PyObject *state = PyErr_Occurred() ? NULL : new_state(&t);
    t_free(&t);
    return state;
}

static PyMethodDef methods[] = {
    {"setup", ct_setup, METH_O, "setup(classes): the Python classes the tracker builds"},
    {"track_pcap", track_pcap, METH_VARARGS,
     "track_pcap(fd, linktype, big_endian, unit, limit, chunk, decode, progress, size)"},
    {"track_frames", track_frames, METH_VARARGS,
     "track_frames(records, decode[, tick]) -> State; records as Capture.records() or "
     "pcapng walk() yields them; tick() after every 65536 packets and at the end"},
    {"track_frame_batches", track_frame_batches, METH_VARARGS,
     "track_frame_batches(records, decode[, tick]) -> State; as track_frames, records may "
     "also be etl_fastc batches (items, frame, ctx)"},
    {"track_pcapng", track_pcapng, METH_VARARGS,
     "track_pcapng(fd, chunk, decode, tick) -> (state, records, bytes_read, link_types), or "
     "(None, ticks) when the file needs the Python walk"},
    {"track_objects", track_objects, METH_VARARGS,
     "track_objects(packets[, tick]) -> State; tick() after every 65536 packets and at the end"},
    {"adopt_exact", adopt_exact, METH_VARARGS,
     "adopt_exact(cls, names, data) -> the model with data as __dict__ when its keys are "
     "exactly names, in order; else None (fastmodel.construct's common case)"},
    {"cross_analyse", cross_analyse, METH_VARARGS,
     "cross_analyse(connections, rsts, tolerances, cls, names, constants) -> {rst id: cls} as "
     "facts.cross.analyse makes it, or None when an input is not of the readers' types"},
    {"capture_votes", capture_votes, METH_O,
     "capture_votes(connections) -> (client votes, server votes) as facts.dual.capture_role "
     "counts them, or None when a connection is not of the readers' types"},
    {"fact_fields", fact_fields, METH_NOARGS,
     "fact_fields() -> the field names of the Connection, Endpoint and RstEvent built here"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ctrack", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ctrack(void)
{
    EMPTY = PyTuple_New(0);
    S_IN = PyUnicode_InternFromString("in");
    S_OUT = PyUnicode_InternFromString("out");
    S_CLIENT = PyUnicode_InternFromString("client");
    S_SERVER = PyUnicode_InternFromString("server");
    if (!EMPTY || !S_IN || !S_OUT || !S_CLIENT || !S_SERVER || PyType_Ready(&StateType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
