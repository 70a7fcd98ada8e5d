/* The Python side going in: setup() loads the classes (slot descriptors and offsets), and
 * feed_obj() runs the tracker on a packet object decoded by Python (any reader). */
#include "_ctrack.h"

static const char *SEG_SLOTS[] = {"frame", "ts", "ipv", "src", "dst", "sport", "dport", "ttl",
    "ip_id", "seq", "ack", "flags", "reserved", "window", "payload_len", "payload",
    "fragmented", "truncated", "direction", NULL};
static const char *HALF_SLOTS[] = {"conn", "side", "pkts", "byts", "nrst", "ttl0", "ttl_other",
    "ttl_changes", "last", "ldata", "nxt", "last_rst_ts", "first_rst_nxt", "wscale", "fin",
    NULL};
static const char *CONN_SLOTS[] = {"id", "ipv", "addr", "port", "inferred", "start", "last_ts",
    "prev_ts", "max_gap", "max_gap_at", "gap_before_max", "half", "slow", "hs", "syn",
    "synack_time", "synack_seq", "fin_by", "closed", "rsts", "watch", "maxseg", "frag", "icmp",
    "pmtu", NULL};
static const char *REC_SLOTS[] = {"id", "seg", "conn", "side", "index", "idle_before",
    "idle_trigger", "idle_sender", "packets_before", "bytes_before", "sender_nxt", "other_nxt",
    "other_hiack", "sender_last", "other_last", "other_wscale", "sender_wscale", "hs",
    "syn_seen", "synack_seen", "trigger", "maxseg_before", "first_rst_nxt", "data_after_s",
    "synack_after", "challenge_ack", "other_last_ack", "inexact", "earlier_gap_before",
    "earlier_gap_trigger", NULL};
static const char *FRAG_SLOTS[] = {"ts", "src", "dst", "ip_id", "proto", NULL};
static const char *ICMP_SLOTS[] = {"ts", "orig_src", "orig_dst", "orig_sport", "orig_dport",
    "mtu", NULL};

Cls SEGC, HALFC, CONNC, RECC, FRAGC, ICMPC;
PyObject *SYNINFO, *TRACKER, *EMPTY, *S_IN, *S_OUT, *S_CLIENT, *S_SERVER;

static int load_cls(PyObject *classes, const char *name, const char **slots, Cls *c)
{
    PyObject *cls = PyDict_GetItemString(classes, name);
    if (!cls || !PyType_Check(cls)) {
        PyErr_Format(PyExc_TypeError, "setup: class %s missing", name);
        return -1;
    }
    Py_INCREF(cls);
    Py_XSETREF(c->cls, cls);
    c->names = slots;
    for (c->n = 0; slots[c->n]; c->n++) {
        PyObject *d = PyObject_GetAttrString(cls, slots[c->n]);
        if (!d)
            return -1;
        PyMemberDef *m = Py_IS_TYPE(d, &PyMemberDescr_Type)
            ? ((PyMemberDescrObject *)d)->d_member : NULL;
        if (!m || m->type != Py_T_OBJECT_EX || (m->flags & Py_READONLY)) {
            Py_DECREF(d);
            PyErr_Format(PyExc_TypeError, "setup: %s.%s is not a slot", name, slots[c->n]);
            return -1;
        }
        c->off[c->n] = m->offset;
        Py_XSETREF(c->d[c->n], d);
    }
    return 0;
}

PyObject *ct_setup(PyObject *self, PyObject *classes)
{
    (void)self;
    if (!PyDict_Check(classes))
        return PyErr_Format(PyExc_TypeError, "setup: a dict of classes");
    if (load_cls(classes, "TcpSegment", SEG_SLOTS, &SEGC) < 0
        || load_cls(classes, "Half", HALF_SLOTS, &HALFC) < 0
        || load_cls(classes, "Conn", CONN_SLOTS, &CONNC) < 0
        || load_cls(classes, "RstRecord", REC_SLOTS, &RECC) < 0
        || load_cls(classes, "IpFragment", FRAG_SLOTS, &FRAGC) < 0
        || load_cls(classes, "IcmpTooBig", ICMP_SLOTS, &ICMPC) < 0)
        return NULL;
    PyObject *si = PyDict_GetItemString(classes, "SynInfo");
    PyObject *tr = PyDict_GetItemString(classes, "Tracker");
    if (!si || !tr || !PyType_Check(si) || !PyType_IsSubtype((PyTypeObject *)si, &PyTuple_Type))
        return PyErr_Format(PyExc_TypeError, "setup: SynInfo/Tracker missing");
    Py_INCREF(si);
    Py_XSETREF(SYNINFO, si);
    Py_INCREF(tr);
    Py_XSETREF(TRACKER, tr);
    /* The fact models (pydantic: a tenth of a second to import) may come in a later call,
     * so that a reader thread can walk the file while they are imported. */
    if (PyDict_GetItemString(classes, "Connection") && facts_setup(classes) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* -- reading decoded Python packets ------------------------------------------------------- */
static int get_i64(Cls *c, int i, PyObject *o, int64_t *out, int none_ok)
{
    PyObject *v = get(c, i, o);
    if (!v)
        return -1;
    if (v == Py_None && none_ok) {
        *out = -1;
    } else {
        *out = PyLong_AsLongLong(v);
        if (*out == -1 && PyErr_Occurred()) {
            Py_DECREF(v);
            return -1;
        }
    }
    Py_DECREF(v);
    return 0;
}

static int get_addr(Cls *c, int i, PyObject *o, uint8_t *out, int *alen)
{
    PyObject *v = get(c, i, o);
    if (!v)
        return -1;
    if (!PyBytes_Check(v) || (PyBytes_GET_SIZE(v) != 4 && PyBytes_GET_SIZE(v) != 16)) {
        Py_DECREF(v);
        PyErr_SetString(PyExc_ValueError, "address is not 4 or 16 bytes");
        return -1;
    }
    *alen = (int)PyBytes_GET_SIZE(v);
    memcpy(out, PyBytes_AS_STRING(v), *alen);
    Py_DECREF(v);
    return 0;
}

static int get_ts(Cls *c, PyObject *o, double *ts)
{
    PyObject *v = get(c, 0 /* ts is slot 0 of fragments and ICMP, 1 of segments */, o);
    if (!v)
        return -1;
    *ts = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return (*ts == -1.0 && PyErr_Occurred()) ? -1 : 0;
}


static int feed_segment_obj(T *t, PyObject *o)
{
    Seg s;
    int64_t v[19];
    static const int ints[] = {S_FRAME, S_IPV, S_SPORT, S_DPORT, S_TTL, S_IPID, S_SEQ, S_ACK,
                               S_FLAGS, S_RES, S_WIN, S_PLEN, -1};
    memset(&s, 0, sizeof(s));
    for (int j = 0; ints[j] >= 0; j++) {
        PyObject *x = slot(&SEGC, ints[j], o);
        if (!x)
            return -1;
        if (x == Py_None && ints[j] == S_IPID)
            v[S_IPID] = -1;
        else if ((v[ints[j]] = PyLong_AsLongLong(x)) == -1 && PyErr_Occurred())
            return -1;
    }
    PyObject *x = slot(&SEGC, S_TS, o);
    if (!x || ((s.ts = PyFloat_AsDouble(x)) == -1.0 && PyErr_Occurred()))
        return -1;
    PyObject *src = slot(&SEGC, S_SRC, o), *dst = src ? slot(&SEGC, S_DST, o) : NULL;
    if (!dst)
        return -1;
    Py_ssize_t alen = PyBytes_Check(src) ? PyBytes_GET_SIZE(src) : -1;
    if (alen != 4 && alen != 16) {
        PyErr_SetString(PyExc_ValueError, "address is not 4 or 16 bytes");
        return -1;
    }
    if (!PyBytes_Check(dst) || PyBytes_GET_SIZE(dst) != alen || v[S_TTL] < 0 || v[S_TTL] > 255
        || v[S_FLAGS] < 0 || v[S_FLAGS] > 255 || v[S_SEQ] < 0 || v[S_SEQ] > M32 || v[S_ACK] < 0
        || v[S_ACK] > M32 || v[S_PLEN] < 0 || v[S_IPID] > 0x7FFFFFFF || v[S_IPID] < -1
        || v[S_SPORT] < 0 || v[S_SPORT] > 0xFFFF || v[S_DPORT] < 0 || v[S_DPORT] > 0xFFFF
        || v[S_WIN] < 0 || v[S_WIN] > 0xFFFF || v[S_RES] < 0 || v[S_RES] > 255
        || v[S_IPV] < 0 || v[S_IPV] > 255) {
        PyErr_SetString(PyExc_ValueError, "segment field out of range");
        return -1;
    }
    memcpy(s.src, PyBytes_AS_STRING(src), alen);
    memcpy(s.dst, PyBytes_AS_STRING(dst), alen);
    s.frame = v[S_FRAME];
    s.ipv = (uint8_t)v[S_IPV];
    s.alen = (uint8_t)alen;
    s.sport = (uint16_t)v[S_SPORT];
    s.dport = (uint16_t)v[S_DPORT];
    s.ttl = (uint8_t)v[S_TTL];
    s.ip_id = (int32_t)v[S_IPID];
    s.seq = (uint32_t)v[S_SEQ];
    s.ack = (uint32_t)v[S_ACK];
    s.flags = (uint8_t)v[S_FLAGS];
    s.reserved = (uint8_t)v[S_RES];
    s.window = (uint16_t)v[S_WIN];
    s.payload_len = v[S_PLEN];
    for (int j = S_FRAG; j <= S_TRUNC; j++) {
        PyObject *b = slot(&SEGC, j, o);
        int tv = b ? PyObject_IsTrue(b) : -1;
        if (tv < 0)
            return -1;
        if (j == S_FRAG)
            s.fragmented = (uint8_t)tv;
        else
            s.truncated = (uint8_t)tv;
    }
    PyObject *b = slot(&SEGC, S_DIR, o);
    if (!b)
        return -1;
    if (b == Py_None)
        s.direction = 0;
    else if (PyUnicode_Check(b) && PyUnicode_Compare(b, S_IN) == 0)
        s.direction = 1;
    else if (PyUnicode_Check(b) && PyUnicode_Compare(b, S_OUT) == 0)
        s.direction = 2;
    else {
        PyErr_SetString(PyExc_ValueError, "unsupported segment direction");
        return -1;
    }
    PyObject *pl = slot(&SEGC, S_PAYLOAD, o);
    if (!pl)
        return -1;
    if (!PyBytes_Check(pl)) {
        PyErr_SetString(PyExc_ValueError, "payload is not bytes");
        return -1;
    }
    Py_INCREF(pl);
    int r = feed_seg(t, &s, (const uint8_t *)PyBytes_AS_STRING(pl), PyBytes_GET_SIZE(pl), pl);
    Py_DECREF(pl);
    return r;
}

/* What facts.decode returned (a new reference, consumed; NULL: decode raised): 1 fed to the
 * tracker, 0 no packet (None), -1 error (set: no memory when feed_obj set none). */
int feed_decoded(T *t, PyObject *o)
{
    if (!o)
        return -1;
    int r = o == Py_None ? 0 : feed_obj(t, o) < 0 ? -1 : 1;
    Py_DECREF(o);
    if (r < 0 && !PyErr_Occurred())
        PyErr_NoMemory();
    return r;
}

/* Tracker.feed for one decoded Python packet (any of the three classes). */
int feed_obj(T *t, PyObject *o)
{
    double ts;
    if (Py_TYPE(o) == (PyTypeObject *)SEGC.cls) {
        PyObject *v = slot(&SEGC, S_TS, o);
        if (!v || ((ts = PyFloat_AsDouble(v)) == -1.0 && PyErr_Occurred()))
            return -1;
    } else if (PyObject_TypeCheck(o, (PyTypeObject *)FRAGC.cls)) {
        if (get_ts(&FRAGC, o, &ts) < 0)
            return -1;
    } else if (PyObject_TypeCheck(o, (PyTypeObject *)ICMPC.cls)) {
        if (get_ts(&ICMPC, o, &ts) < 0)
            return -1;
    } else {
        PyObject *v = PyObject_GetAttrString(o, "ts");
        if (!v)
            return -1;
        ts = PyFloat_AsDouble(v);
        Py_DECREF(v);
        if (ts == -1.0 && PyErr_Occurred())
            return -1;
    }
    note_ts(t, ts);
    if (Py_TYPE(o) == (PyTypeObject *)SEGC.cls)
        return feed_segment_obj(t, o);
    if (PyObject_TypeCheck(o, (PyTypeObject *)FRAGC.cls)) {
        int64_t id;
        uint8_t a[16], b[16];
        int al, bl;
        PyObject *pv = get(&FRAGC, 4, o);
        if (!pv)
            return -1;
        int is6 = PyLong_Check(pv) && PyLong_AsLongLong(pv) == 6;
        Py_DECREF(pv);
        if (!is6)
            return 0;
        if (get_addr(&FRAGC, 1, o, a, &al) < 0 || get_addr(&FRAGC, 2, o, b, &bl) < 0
            || get_i64(&FRAGC, 3, o, &id, 1) < 0)
            return -1;
        if (al != bl || id < -1 || id > M32)   /* -1: ip_id None */
            return 0;
        Key k;
        frag_key(&k, al, a, b, id);
        int32_t ci = map_get(&t->frags, &k);
        if (ci >= 0)
            CONN(t, ci)->frag = 1;
        return 0;
    }
    if (PyObject_TypeCheck(o, (PyTypeObject *)ICMPC.cls)) {
        uint8_t a[16], b[16];
        int al, bl;
        int64_t sp, dp, mtu;
        if (get_i64(&ICMPC, 3, o, &sp, 1) < 0 || get_i64(&ICMPC, 4, o, &dp, 1) < 0)
            return -1;
        if (sp < 0 || dp < 0 || sp > 0xFFFF || dp > 0xFFFF)
            return 0;   /* ports unknown: no 4-tuple in the table matches */
        if (get_addr(&ICMPC, 1, o, a, &al) < 0 || get_addr(&ICMPC, 2, o, b, &bl) < 0)
            return -1;
        if (al != bl)
            return 0;
        Key k;
        conn_key(&k, al, a, (uint16_t)sp, b, (uint16_t)dp);
        int32_t hv = map_get(&t->table, &k);
        if (hv < 0)
            return 0;
        Conn *c = CONN(t, hv / 2);
        c->icmp = 1;
        if (get_i64(&ICMPC, 5, o, &mtu, 1) < 0)
            return -1;
        if (mtu > 0 && (!c->has_pmtu || mtu < c->pmtu)) {
            c->pmtu = mtu;
            c->has_pmtu = 1;
        }
    }
    return 0;
}
