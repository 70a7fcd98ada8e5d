/* The facts.tracker.Tracker of a state: its Conn/RstRecord objects (made by _ctrack_pyout.c),
 * the 4-tuple table and fragment owners replayed in the Python tracker's insertion order, and
 * the counters. Connection and RST blocks are freed as their objects are made. */
#include "_ctrack.h"

static int set_attr(PyObject *o, const char *name, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyObject_SetAttrString(o, name, v);
    Py_DECREF(v);
    return r;
}

static int table_put(PyObject *table, PyObject *x, int px, PyObject *y, int py,
                     PyObject *h)
{
    PyObject *p1 = PyLong_FromLongLong(px), *p2 = PyLong_FromLongLong(py), *k = NULL;
    if (p1 && p2)
        k = PyTuple_Pack(4, x, p1, y, p2);
    Py_XDECREF(p1);
    Py_XDECREF(p2);
    if (!k)
        return -1;
    int r = PyDict_SetItem(table, k, h);
    Py_DECREF(k);
    return r;
}

/* A facts.tracker.Tracker holding Python twins of the C state (which it frees as it goes). */
PyObject *build_tracker(T *t)
{
    PyObject *result = NULL, *tracker = NULL, *conns = NULL, *rsts = NULL, *table = NULL,
             *frags = NULL;
    PyObject **cobj = NULL;
    int32_t **wl = NULL, *wn = NULL;   /* each connection's watch list (-1: no RST) */
    B bb, *b = &bb;
    map_free(&t->table);   /* lookups are over */
    if (b_init(b) < 0) {
        b_free(b);
        return NULL;
    }
    tracker = PyObject_CallNoArgs(TRACKER);
    conns = PyList_New(t->nconn);
    rsts = PyList_New(t->nrec);
    table = PyDict_New();
    frags = PyDict_New();
    cobj = PyMem_RawCalloc((size_t)t->nconn + 1, sizeof(PyObject *));
    wl = PyMem_RawCalloc((size_t)t->nconn + 1, sizeof(int32_t *));
    wn = PyMem_RawCalloc((size_t)t->nconn + 1, sizeof(int32_t));
    if (!tracker || !conns || !rsts || !table || !frags || !cobj || !wl || !wn)
        goto fail;
    for (int64_t i = 0; i < t->nconn; i++) {
        PyObject *addrs[2] = {NULL, NULL};
        PyObject *c = conn_obj(b, t, i, addrs);
        if (!c) {
            Py_XDECREF(addrs[0]);
            Py_XDECREF(addrs[1]);
            goto fail;
        }
        PyList_SET_ITEM(conns, i, c);
        cobj[i] = c;
        Conn *cc = CONN(t, i);
        PyObject *halves = get(&CONNC, 11, c);
        int r = halves ? 0 : -1;
        /* Tracker._new_conn's two stores, replayed in order: same keys, values and order */
        if (!r)
            r = table_put(table, addrs[0], cc->port[0], addrs[1], cc->port[1],
                          PyTuple_GET_ITEM(halves, 0));
        if (!r)
            r = table_put(table, addrs[1], cc->port[1], addrs[0], cc->port[0],
                          PyTuple_GET_ITEM(halves, 1));
        Py_XDECREF(halves);
        Py_XDECREF(addrs[0]);
        Py_XDECREF(addrs[1]);
        if (r < 0)
            goto fail;
        wn[i] = cc->nrsts ? cc->nwatch : -1;
        wl[i] = cc->watch;
        cc->watch = NULL;
        if (i % BLOCK == BLOCK - 1)
            free_conn_block(t, i / BLOCK);
    }
    for (int64_t i = 0; i < t->nrec; i++) {
        Rec *r = REC(t, i);
        PyObject *c = cobj[r->conn];
        PyObject *o = rec_obj(b, r, i, c);
        if (!o)
            goto fail;
        PyList_SET_ITEM(rsts, i, o);
        PyObject *lst = get(&CONNC, C_RSTS, c);
        if (!lst)
            goto fail;
        if (!PyList_Check(lst)) {
            Py_DECREF(lst);
            if (put(&CONNC, c, C_RSTS, PyList_New(0)) < 0 || !(lst = get(&CONNC, C_RSTS, c)))
                goto fail;
        }
        int e = PyList_Append(lst, o);
        Py_DECREF(lst);
        if (e < 0)
            goto fail;
        if (i % BLOCK == BLOCK - 1)
            free_rec_block(t, i / BLOCK);
    }
    for (int64_t i = 0; i < t->nconn; i++) {
        if (wn[i] < 0)
            continue;
        PyObject *w = PyList_New(wn[i]);
        for (int32_t j = 0; w && j < wn[i]; j++) {
            PyObject *o = PyList_GET_ITEM(rsts, wl[i][j]);
            Py_INCREF(o);
            PyList_SET_ITEM(w, j, o);
        }
        if (put(&CONNC, cobj[i], C_WATCH, w) < 0)
            goto fail;
    }
    for (size_t i = 0; i < t->frags.n; i++) {
        const uint8_t *k = (const uint8_t *)t->flog[i].w;
        int alen = k[0];
        uint32_t id;
        memcpy(&id, k + 33, 4);
        PyObject *key = Py_BuildValue("(y#y#N)", (const char *)k + 1, (Py_ssize_t)alen,
                                      (const char *)k + 17, (Py_ssize_t)alen,
                                      k[37] ? none() : PyLong_FromUnsignedLong(id));
        if (!key)
            goto fail;
        int e = PyDict_SetItem(frags, key, cobj[map_get(&t->frags, &t->flog[i])]);
        Py_DECREF(key);
        if (e < 0)
            goto fail;
    }
    if (set_attr(tracker, "connections", conns) < 0 || set_attr(tracker, "rsts", rsts) < 0
        || set_attr(tracker, "table", table) < 0 || set_attr(tracker, "frag_owner", frags) < 0
        || set_attr(tracker, "tcp_packets", PyLong_FromLongLong(t->tcp)) < 0
        || set_attr(tracker, "rst_packets", PyLong_FromLongLong(t->rst)) < 0
        || set_attr(tracker, "first_ts", optf(t->has_ts, t->first_ts)) < 0
        || set_attr(tracker, "last_ts", optf(t->has_ts, t->last_ts)) < 0) {
        conns = rsts = table = frags = NULL;   /* set_attr took them */
        goto fail;
    }
    result = tracker;   /* which holds the lists and tables now */
    tracker = conns = rsts = table = frags = NULL;
fail:
    if (wl)
        for (int64_t i = 0; i < t->nconn; i++)
            PyMem_RawFree(wl[i]);
    PyMem_RawFree(wl);
    PyMem_RawFree(wn);
    PyMem_RawFree(cobj);
    b_free(b);
    Py_XDECREF(tracker);
    Py_XDECREF(conns);
    Py_XDECREF(rsts);
    Py_XDECREF(table);
    Py_XDECREF(frags);
    return result;
}
