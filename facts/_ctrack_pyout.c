/* The Python twins of the C state: a facts.tracker.Tracker whose Conn, Half, RstRecord, SynInfo
 * and TcpSegment objects (one per packet still referenced, shared like the Python tracker's)
 * are the ones the Python pass would have left, so facts.rst reads them unchanged. */
#include "_ctrack.h"


int b_init(B *b)
{
    memset(b, 0, sizeof(B));
    if (map_init(&b->addr_map, 1 << 10) < 0 || map_init(&b->seg_map, 1 << 12) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void b_free(B *b)
{
    for (int64_t i = 0; i < b->nobj; i++)
        Py_DECREF(b->objs[i]);
    PyMem_RawFree(b->objs);
    map_free(&b->addr_map);
    map_free(&b->seg_map);
    memset(b, 0, sizeof(B));
}

/* Keeps a new reference to o in the cache under k; o stays the caller's too. */
static int b_keep(B *b, Map *m, const Key *k, PyObject *o)
{
    if (b->nobj == b->capobj) {
        int64_t cap = b->capobj ? b->capobj * 2 : 4096;
        PyObject **objs = PyMem_RawRealloc(b->objs, (size_t)cap * sizeof(PyObject *));
        if (!objs) {
            PyErr_NoMemory();
            return -1;
        }
        b->objs = objs;
        b->capobj = cap;
    }
    if (map_put(m, k, (int32_t)b->nobj) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(o);
    b->objs[b->nobj++] = o;
    return 0;
}

static PyObject *paddr(B *b, const uint8_t *a, int alen)
{
    Key k;
    memset(&k, 0, sizeof k);
    ((uint8_t *)k.w)[0] = (uint8_t)alen;
    memcpy((uint8_t *)k.w + 1, a, alen);
    int32_t i = map_get(&b->addr_map, &k);
    if (i >= 0) {
        Py_INCREF(b->objs[i]);
        return b->objs[i];
    }
    PyObject *o = PyBytes_FromStringAndSize((const char *)a, alen);
    if (o && b_keep(b, &b->addr_map, &k, o) < 0)
        Py_CLEAR(o);
    return o;
}

/* The TcpSegment of frame s->frame; shared: through the frame map (RST records may point at
 * the same packet), else a new object (connections without RSTs: only their own halves
 * could share it, and half_obj sees to that). */
static PyObject *seg_obj(B *b, const Seg *s, PyObject *payload, int shared)
{
    Key k;
    memset(&k, 0, sizeof k);
    k.w[0] = (uint64_t)s->frame;
    if (shared) {
        int32_t i = map_get(&b->seg_map, &k);
        if (i >= 0) {
            Py_INCREF(b->objs[i]);
            return b->objs[i];
        }
    }
    PyObject *o = newobj(&SEGC);
    if (!o)
        return NULL;
    if (shared && b_keep(b, &b->seg_map, &k, o) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    PyObject *dir = s->direction == 1 ? S_IN : s->direction == 2 ? S_OUT : Py_None;
    Py_INCREF(dir);
    if (payload)
        Py_INCREF(payload);
    else
        payload = PyBytes_FromStringAndSize((const char *)s->payload, s->plcap);
    if (put(&SEGC, o, S_FRAME, PyLong_FromLongLong(s->frame)) < 0
        || put(&SEGC, o, S_TS, PyFloat_FromDouble(s->ts)) < 0
        || put(&SEGC, o, S_IPV, PyLong_FromLongLong(s->ipv)) < 0
        || put(&SEGC, o, S_SRC, paddr(b, s->src, s->alen)) < 0
        || put(&SEGC, o, S_DST, paddr(b, s->dst, s->alen)) < 0
        || put(&SEGC, o, S_SPORT, PyLong_FromLongLong(s->sport)) < 0
        || put(&SEGC, o, S_DPORT, PyLong_FromLongLong(s->dport)) < 0
        || put(&SEGC, o, S_TTL, PyLong_FromLongLong(s->ttl)) < 0
        || put(&SEGC, o, S_IPID, s->ip_id >= 0 ? PyLong_FromLongLong(s->ip_id) : none()) < 0
        || put(&SEGC, o, S_SEQ, PyLong_FromUnsignedLong(s->seq)) < 0
        || put(&SEGC, o, S_ACK, PyLong_FromUnsignedLong(s->ack)) < 0
        || put(&SEGC, o, S_FLAGS, PyLong_FromLongLong(s->flags)) < 0
        || put(&SEGC, o, S_RES, PyLong_FromLongLong(s->reserved)) < 0
        || put(&SEGC, o, S_WIN, PyLong_FromLongLong(s->window)) < 0
        || put(&SEGC, o, S_PLEN, PyLong_FromLongLong(s->payload_len)) < 0
        || put(&SEGC, o, S_PAYLOAD, payload) < 0
        || put(&SEGC, o, S_FRAG, PyBool_FromLong(s->fragmented)) < 0
        || put(&SEGC, o, S_TRUNC, PyBool_FromLong(s->truncated)) < 0
        || put(&SEGC, o, S_DIR, dir) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

static PyObject *opt_seg(B *b, int has, const Seg *s)
{
    return has ? seg_obj(b, s, NULL, 1) : none();
}

static PyObject *ttl_dict(const TtlOther *o)
{
    if (!o)
        return none();
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < o->n; i++) {
        PyObject *k = PyLong_FromLong(o->order[i]);
        PyObject *v = PyLong_FromUnsignedLong(o->count[o->order[i]]);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *half_obj(B *b, Half *h, PyObject *conn, int side, int shared)
{
    PyObject *last = h->has_last ? seg_obj(b, &h->last, NULL, shared) : none(), *ldata;
    if (!last)
        return NULL;
    if (h->has_ldata && h->has_last && h->ldata.frame == h->last.frame) {
        Py_INCREF(last);
        ldata = last;
    } else if (!(ldata = h->has_ldata ? seg_obj(b, &h->ldata, NULL, shared) : none())) {
        Py_DECREF(last);
        return NULL;
    }
    PyObject *o = newobj(&HALFC);
    if (!o) {
        Py_DECREF(last);
        Py_DECREF(ldata);
        return NULL;
    }
    put(&HALFC, o, 8, last);   /* first: put only fails on a NULL value, and takes these */
    put(&HALFC, o, 9, ldata);
    Py_INCREF(conn);
    if (put(&HALFC, o, 0, conn) < 0 || put(&HALFC, o, 1, PyLong_FromLongLong(side)) < 0
        || put(&HALFC, o, 2, PyLong_FromLongLong(h->pkts)) < 0
        || put(&HALFC, o, 3, PyLong_FromLongLong(h->byts)) < 0
        || put(&HALFC, o, 4, PyLong_FromLongLong(h->nrst)) < 0
        || put(&HALFC, o, 5, h->ttl0 >= 0 ? PyLong_FromLongLong(h->ttl0) : none()) < 0
        || put(&HALFC, o, 6, ttl_dict(h->other)) < 0
        || put(&HALFC, o, 7, PyLong_FromLongLong(h->ttl_changes)) < 0
        || put(&HALFC, o, 10, opti(h->has_nxt, h->nxt)) < 0
        || put(&HALFC, o, 11, optf(h->has_rst_ts, h->last_rst_ts)) < 0
        || put(&HALFC, o, 12, opti(h->has_first_rst_nxt, h->first_rst_nxt)) < 0
        || put(&HALFC, o, 13, none()) < 0
        || put(&HALFC, o, 14, PyBool_FromLong(h->fin)) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

static PyObject *pair(PyObject *a, PyObject *b)
{
    if (!a || !b) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        return NULL;
    }
    PyObject *t = PyTuple_Pack(2, a, b);
    Py_DECREF(a);
    Py_DECREF(b);
    return t;
}

static PyObject *syn_obj(Conn *c)
{
    if (!c->has_syn)
        return none();
    PyObject *items = Py_BuildValue("(dkN)", c->syn_ts, (unsigned long)c->syn_seq,
                                    opti(c->syn_ip_id >= 0, c->syn_ip_id));
    if (!items)
        return NULL;
    PyObject *args = PyTuple_Pack(1, items);
    Py_DECREF(items);
    if (!args)
        return NULL;
    PyObject *o = PyTuple_Type.tp_new((PyTypeObject *)SYNINFO, args, NULL);
    Py_DECREF(args);
    return o;
}

PyObject *conn_obj(B *b, T *t, int64_t i, PyObject **addrs)
{
    Conn *c = CONN(t, i);
    PyObject *o = newobj(&CONNC);
    if (!o)
        return NULL;
    PyObject *fin = NULL;
    if (c->nfin) {
        fin = PyList_New(c->nfin);
        for (int j = 0; fin && j < c->nfin; j++) {
            PyObject *s = c->fin_by[j] == 0 ? S_CLIENT : S_SERVER;
            Py_INCREF(s);
            PyList_SET_ITEM(fin, j, s);
        }
    } else {
        Py_INCREF(EMPTY);
        fin = EMPTY;
    }
    PyObject *h0 = half_obj(b, &c->half[0], o, 0, c->nrsts > 0);
    PyObject *h1 = h0 ? half_obj(b, &c->half[1], o, 1, c->nrsts > 0) : NULL;
    addrs[0] = paddr(b, c->addr[0], c->alen);
    addrs[1] = paddr(b, c->addr[1], c->alen);
    Py_XINCREF(addrs[0]);
    Py_XINCREF(addrs[1]);
    Py_INCREF(EMPTY);
    Py_INCREF(EMPTY);
    if (put(&CONNC, o, 0, fact_id('c', i + 1)) < 0
        || put(&CONNC, o, 1, PyLong_FromLong(c->ipv)) < 0
        || put(&CONNC, o, 2, pair(addrs[0], addrs[1])) < 0
        || put(&CONNC, o, 3, pair(PyLong_FromLong(c->port[0]), PyLong_FromLong(c->port[1]))) < 0
        || put(&CONNC, o, 4, PyBool_FromLong(c->inferred)) < 0
        || put(&CONNC, o, 5, PyFloat_FromDouble(c->start)) < 0
        || put(&CONNC, o, 6, PyFloat_FromDouble(c->last_ts)) < 0
        || put(&CONNC, o, 7, PyFloat_FromDouble(c->prev_ts)) < 0
        || put(&CONNC, o, 8, PyFloat_FromDouble(c->max_gap)) < 0
        || put(&CONNC, o, 9, optf(c->has_gap_at, c->max_gap_at)) < 0
        || put(&CONNC, o, 10, PyFloat_FromDouble(c->gap_before_max)) < 0
        || put(&CONNC, o, 11, pair(h0, h1)) < 0
        || put(&CONNC, o, 12, PyBool_FromLong(c->slow)) < 0
        || put(&CONNC, o, 13, PyLong_FromLongLong(c->hs)) < 0
        || put(&CONNC, o, 14, syn_obj(c)) < 0
        || put(&CONNC, o, 15, optf(c->has_synack, c->synack_time)) < 0
        || put(&CONNC, o, 16, opti(c->has_synack, c->synack_seq)) < 0
        || put(&CONNC, o, 17, fin) < 0
        || put(&CONNC, o, 18, PyBool_FromLong(c->closed)) < 0
        || put(&CONNC, o, C_RSTS, EMPTY) < 0 || put(&CONNC, o, C_WATCH, EMPTY) < 0
        || put(&CONNC, o, 21, PyLong_FromLongLong(c->maxseg)) < 0
        || put(&CONNC, o, 22, PyBool_FromLong(c->frag)) < 0
        || put(&CONNC, o, 23, PyBool_FromLong(c->icmp)) < 0
        || put(&CONNC, o, 24, opti(c->has_pmtu, c->pmtu)) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

PyObject *rec_obj(B *b, Rec *r, int64_t i, PyObject *conn)
{
    PyObject *pl = r->payload;
    if (pl)
        Py_INCREF(pl);
    else if (!(pl = PyBytes_FromStringAndSize((const char *)r->raw, r->rawlen)))
        return NULL;
    PyObject *seg = seg_obj(b, &r->seg, pl, 1);
    Py_DECREF(pl);
    if (!seg)
        return NULL;
    PyObject *o = newobj(&RECC);
    if (!o) {
        Py_DECREF(seg);
        return NULL;
    }
    Py_INCREF(conn);
    if (put(&RECC, o, 0, fact_id('r', i + 1)) < 0 || put(&RECC, o, 1, seg) < 0
        || put(&RECC, o, 2, conn) < 0 || put(&RECC, o, 3, PyLong_FromLongLong(r->side)) < 0
        || put(&RECC, o, 4, PyLong_FromLongLong(r->index)) < 0
        || put(&RECC, o, 5, optf(r->has_idle_before, r->idle_before)) < 0
        || put(&RECC, o, 6, optf(r->has_idle_trigger, r->idle_trigger)) < 0
        || put(&RECC, o, 7, optf(r->has_idle_sender, r->idle_sender)) < 0
        || put(&RECC, o, 8, PyLong_FromLongLong(r->packets_before)) < 0
        || put(&RECC, o, 9, pair(PyLong_FromLongLong(r->bytes_before[0]),
                                  PyLong_FromLongLong(r->bytes_before[1]))) < 0
        || put(&RECC, o, 10, opti(r->has_sender_nxt, r->sender_nxt)) < 0
        || put(&RECC, o, 11, opti(r->has_other_nxt, r->other_nxt)) < 0
        || put(&RECC, o, 12, opti(r->has_ola, r->other_last_ack)) < 0
        || put(&RECC, o, 13, opt_seg(b, r->has_sender_last, &r->sender_last)) < 0
        || put(&RECC, o, 14, opt_seg(b, r->has_other_last, &r->other_last)) < 0
        || put(&RECC, o, 15, none()) < 0 || put(&RECC, o, 16, none()) < 0
        || put(&RECC, o, 17, PyLong_FromLongLong(r->hs)) < 0
        || put(&RECC, o, 18, PyBool_FromLong(r->syn_seen)) < 0
        || put(&RECC, o, 19, PyBool_FromLong(r->synack_seen)) < 0
        || put(&RECC, o, 20, opt_seg(b, r->has_trigger, &r->trigger)) < 0
        || put(&RECC, o, 21, PyLong_FromLongLong(r->maxseg_before)) < 0
        || put(&RECC, o, 22, PyLong_FromLongLong(r->first_rst_nxt)) < 0
        || put(&RECC, o, 23, optf(r->has_data_after, r->data_after_s)) < 0
        || put(&RECC, o, 24, PyBool_FromLong(r->synack_after)) < 0
        || put(&RECC, o, 25, PyBool_FromLong(r->challenge_ack)) < 0
        || put(&RECC, o, 26, opti(r->has_ola, r->other_last_ack)) < 0
        || put(&RECC, o, 27, PyBool_FromLong(r->inexact)) < 0
        || put(&RECC, o, 28, optf(r->has_egb, r->egb)) < 0
        || put(&RECC, o, 29, optf(r->has_egt, r->egt)) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}
