/* merge(streams): etl_buffers.merge_streams, compiled.
 * The same algorithm, step for step, so that the lists come out in the same order and cut
 * at the same places: load the next list of the stream furthest behind (the first of those
 * equally far behind; a stream not yet loaded is furthest behind), then every pooled event
 * no later than the least advanced stream's last loaded timestamp is final. The pool is
 * kept stably sorted by timestamp at every load instead of sorted at each cut -- a stable
 * sort of (sorted pool + new events) is their stable merge, so the result is the same --
 * and head_ts is what the Python code reads as pool[0][0] (its pool is unsorted between
 * cuts). Timestamps are item[0] as int64 (every walk produces signed 64-bit ones). */
#include "_etlwalk.h"

typedef struct { long long ts; PyObject *item; } Slot;
typedef struct { int loaded; long long ts; PyObject *it; } Front;

typedef struct {
    PyObject_HEAD
    Front *fronts;
    Py_ssize_t nfronts;
    Slot *pool, *tmp;
    Py_ssize_t npool, cap, tmpcap;
    long long head_ts;
    int finished;
} Merger;

static int grow(Slot **buf, Py_ssize_t *cap, Py_ssize_t need)
{
    if (need <= *cap)
        return 0;
    Py_ssize_t n = *cap ? *cap : 256;
    while (n < need)
        n *= 2;
    Slot *p = PyMem_Realloc(*buf, (size_t)n * sizeof(Slot));
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

/* Stable merge of the sorted runs a[0:na] and a[na:n], with tmp room for na slots. */
static void merge_runs(Slot *a, Py_ssize_t na, Py_ssize_t n, Slot *tmp)
{
    if (na == 0 || na == n || a[na - 1].ts <= a[na].ts)
        return;
    /* Pool slots not later than the first new one keep their place. */
    Py_ssize_t lo = 0, hi = na;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (a[mid].ts <= a[na].ts) lo = mid + 1; else hi = mid;
    }
    Py_ssize_t nl = na - lo;
    memcpy(tmp, a + lo, (size_t)nl * sizeof(Slot));
    Py_ssize_t i = 0, j = na, k = lo;
    while (i < nl && j < n)
        a[k++] = (a[j].ts < tmp[i].ts) ? a[j++] : tmp[i++];
    while (i < nl)
        a[k++] = tmp[i++];
}

/* Stable sort of a[0:n] (bottom-up merges; only lists that are not in time order, i.e.
 * damaged buffers, get here), tmp with room for n slots. */
static void sort_slots(Slot *a, Py_ssize_t n, Slot *tmp)
{
    for (Py_ssize_t w = 1; w < n; w *= 2)
        for (Py_ssize_t s = 0; s + w < n; s += 2 * w) {
            Py_ssize_t e = s + 2 * w < n ? s + 2 * w : n;
            merge_runs(a + s, w, e - s, tmp);
        }
}

static PyObject *merger_take(Merger *m, Py_ssize_t cut)
{
    PyObject *out = PyList_New(cut);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < cut; i++)
        PyList_SET_ITEM(out, i, m->pool[i].item);          /* the pool's reference */
    m->npool -= cut;
    memmove(m->pool, m->pool + cut, (size_t)m->npool * sizeof(Slot));
    if (m->npool)
        m->head_ts = m->pool[0].ts;
    return out;
}

/* Load one list into the pool: 1 loaded, 0 empty list, -1 error. */
static int merger_load(Merger *m, Front *f, PyObject *events)
{
    if (!PyList_Check(events)) {
        PyErr_SetString(PyExc_TypeError, "merge: each stream must yield lists");
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(events), old = m->npool;
    if (n == 0)
        return 0;
    if (grow(&m->pool, &m->cap, old + n) < 0 || grow(&m->tmp, &m->tmpcap, old + n) < 0)
        return -1;
    Slot *add = m->pool + old;
    int in_order = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(events, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) == 0) {
            PyErr_SetString(PyExc_TypeError, "merge: events must be tuples (timestamp first)");
            return -1;
        }
        long long ts;
        if (as_int64(PyTuple_GET_ITEM(item, 0), &ts) < 0)
            return -1;
        add[i].ts = ts;
        add[i].item = item;
        if (i && ts < add[i - 1].ts)
            in_order = 0;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        Py_INCREF(add[i].item);
    if (old == 0)
        m->head_ts = add[0].ts;             /* the Python pool's first item, unsorted */
    f->loaded = 1;
    f->ts = add[n - 1].ts;
    m->npool = old + n;
    if (!in_order)
        sort_slots(add, n, m->tmp);
    merge_runs(m->pool, old, old + n, m->tmp);
    return 1;
}

static PyObject *merger_next(Merger *m)
{
    while (m->nfronts > 0) {
        Py_ssize_t lag = 0;
        for (Py_ssize_t i = 1; i < m->nfronts && m->fronts[lag].loaded; i++) {
            Front *f = m->fronts + i;
            if (!f->loaded || f->ts < m->fronts[lag].ts)
                lag = i;
        }
        Front *f = m->fronts + lag;
        PyObject *events = PyIter_Next(f->it);
        if (events == NULL) {
            if (PyErr_Occurred())
                return NULL;
            /* out of the array before the last reference goes: finishing the stream runs
             * Python code, and a collection may then traverse this merger */
            PyObject *it = f->it;
            m->nfronts--;
            memmove(f, f + 1, (size_t)(m->nfronts - lag) * sizeof(Front));
            Py_DECREF(it);
        }
        else {
            int rc = merger_load(m, f, events);
            Py_DECREF(events);
            if (rc < 0)
                return NULL;
            if (rc == 0)
                continue;
        }
        int all_loaded = 1;
        long long safe = LLONG_MAX;
        for (Py_ssize_t i = 0; i < m->nfronts; i++) {
            if (!m->fronts[i].loaded)
                all_loaded = 0;
            else if (m->fronts[i].ts < safe)
                safe = m->fronts[i].ts;
        }
        if (m->nfronts == 0) {
            if (m->npool)
                return merger_take(m, m->npool);
        }
        else if (all_loaded && m->npool && m->head_ts <= safe) {
            Py_ssize_t lo = 0, hi = m->npool;
            while (lo < hi) {
                Py_ssize_t mid = (lo + hi) / 2;
                if (m->pool[mid].ts <= safe) lo = mid + 1; else hi = mid;
            }
            return merger_take(m, lo);  /* lo >= 1: the smallest is <= head_ts <= safe */
        }
    }
    if (m->finished)
        return NULL;
    m->finished = 1;
    return merger_take(m, m->npool);
}

static int merger_traverse(Merger *m, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < m->nfronts; i++)
        Py_VISIT(m->fronts[i].it);
    for (Py_ssize_t i = 0; i < m->npool; i++)
        Py_VISIT(m->pool[i].item);
    return 0;
}

static int merger_clear(Merger *m)
{
    Py_ssize_t nf = m->nfronts, np = m->npool;
    m->nfronts = m->npool = 0;
    for (Py_ssize_t i = 0; i < nf; i++)
        Py_CLEAR(m->fronts[i].it);
    for (Py_ssize_t i = 0; i < np; i++)
        Py_CLEAR(m->pool[i].item);
    return 0;
}

static void merger_dealloc(Merger *m)
{
    PyObject_GC_UnTrack(m);
    merger_clear(m);
    PyMem_Free(m->fronts);
    PyMem_Free(m->pool);
    PyMem_Free(m->tmp);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

PyTypeObject MergerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "facts.capture._etlwalk.Merger",
    .tp_basicsize = sizeof(Merger),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Lists of events merged by time (see merge).",
    .tp_dealloc = (destructor)merger_dealloc,
    .tp_traverse = (traverseproc)merger_traverse,
    .tp_clear = (inquiry)merger_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)merger_next,
};

static Merger *merger_new_from(PyObject *streams)
{
    PyObject *seq = PySequence_Fast(streams, "merge: streams must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Merger *m = PyObject_GC_New(Merger, &MergerType);
    if (m == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    m->fronts = NULL;
    m->pool = m->tmp = NULL;
    m->nfronts = m->npool = m->cap = m->tmpcap = 0;
    m->head_ts = 0;
    m->finished = 0;
    PyObject_GC_Track(m);
    m->fronts = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Front));
    if (m->fronts == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyObject_GetIter(PySequence_Fast_GET_ITEM(seq, i));
        if (it == NULL)
            goto fail;
        m->fronts[i].it = it;
        m->nfronts = i + 1;
    }
    Py_DECREF(seq);
    return m;
fail:
    Py_DECREF(seq);
    Py_DECREF(m);
    return NULL;
}

PyObject *merge(PyObject *self, PyObject *streams)
{
    (void)self;
    return (PyObject *)merger_new_from(streams);
}
