/* The facts of facts/rst.py (connection_model, host_baselines, ConnRsts, rst_event and its
 * helpers) computed straight from the C state: same values, same float arithmetic, same field
 * order, without the intermediate Conn/Half/RstRecord/TcpSegment objects.
 *
 * The models are made as facts.fastmodel.construct makes them when every field is given:
 * object.__new__(cls), then __dict__ (the values in declaration order), a fresh
 * __pydantic_fields_set__ of every field, no extra, no private. Nothing is validated, as with
 * construct; the field names here are checked against the models at import (facts.ctrack), and
 * the tests compare every fact with the Python pass's, dump and JSON.
 */
#include "_ctrack.h"
#include <arpa/inet.h>
#include <sys/socket.h>

#define EXCERPT_BYTES 64
#define IP_ID_SEQUENCE_MAX 1024
#define GAP_FLOOR_S 0.001
#define RST_SEQ_CHANGE_MAX_S 2.0
#define MAX_WSCALE 14

enum { M_CONN, M_EP, M_RST, NMODELS };
enum { N_CONN = 31, N_EP = 2, N_RST = 76 };

static const char *CONN_FIELDS[] = {"kind", "id", "capture", "ip_version", "client", "server",
    "roles_inferred", "start", "end", "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c",
    "handshake", "syn_time", "synack_time", "client_isn", "server_isn", "close", "fin_by",
    "rst_count", "largest_idle_gap_s", "largest_idle_gap_at", "client_ttls", "server_ttls",
    "client_ttl_changes", "server_ttl_changes", "largest_segment", "fragments_seen",
    "icmp_too_big_seen", "path_mtu", NULL};
static const char *EP_FIELDS[] = {"ip", "port", NULL};
static const char *RST_FIELDS[] = {"kind", "id", "capture", "frame", "connection_id",
    "connection", "claimed_sender", "time", "flags", "seq", "ack", "ip_version",
    "reserved_bits_set", "rst_payload_len", "ttl", "initial_ttl", "ttl_decrements",
    "tracert_hop", "baseline_ttl_conn", "baseline_ttl_conn_values", "baseline_ttl_host",
    "baseline_initial_ttl", "baseline_decrements", "baseline_source", "ttl_delta",
    "ttl_matches_baseline", "initial_ttl_differs", "baseline_ttl_varies", "ip_id", "ip_id_gap",
    "ip_id_in_sequence", "ip_id_equals_other_last", "ip_id_zero", "ip_id_equals_syn", "window",
    "window_equals_other_last", "seq_position", "seq_offset", "ack_position", "ack_offset",
    "rsts_in_connection", "rst_index_in_connection", "rst_seq_differ", "rst_ack_differ",
    "rst_seq_change", "data_after_rst", "data_after_rst_s", "rst_behind_data",
    "rst_both_directions", "since_syn_s", "since_start_s", "handshake_completed", "syn_seen",
    "synack_seen", "rst_answers_syn", "rst_answers_synack", "synack_after_rst", "idle_before_s",
    "idle_sender_s", "idle_before_trigger_s", "idle_silence_s", "earlier_gap_max_s",
    "idle_silence_ratio", "packets_before", "bytes_c2s_before", "bytes_s2c_before",
    "payload_bytes_before", "trigger_delta_s", "trigger_len", "trigger_excerpt", "trigger_frame",
    "largest_segment_before", "fragments_seen", "icmp_too_big_seen", "path_mtu",
    "challenge_ack_seen", NULL};
static const char **FIELDS[NMODELS] = {CONN_FIELDS, EP_FIELDS, RST_FIELDS};
static const char *MODEL_NAMES[NMODELS] = {"Connection", "Endpoint", "RstEvent"};

enum { K_CONNECTION, K_RST, K_FLAG_RST, K_FLAG_RSTACK, K_HS_NONE, K_HS_SYN, K_HS_SYNACK,
       K_HS_COMPLETE, K_OPEN, K_FIN, K_FIN_RST, K_EXACT, K_IN_WINDOW, K_OUTSIDE, K_UNKNOWN,
       K_BEHIND, K_AHEAD, K_NONE, K_HOST, NSTR };
static const char *STR_TEXT[NSTR] = {"connection", "rst", "RST", "RST+ACK", "none", "syn",
    "syn_synack", "complete", "open", "fin", "fin_rst", "exact", "in_window", "outside",
    "unknown", "behind", "ahead", "none", "host"};

static PyObject *MCLS[NMODELS], *MKEYS[NMODELS], *MTEMPLATE[NMODELS], *MNAMESET[NMODELS];
static PyObject *STR[NSTR], *A_DICT, *A_FSET, *A_EXTRA, *A_PRIV;

static PyObject *names_tuple(const char **names)
{
    Py_ssize_t n = 0;
    while (names[n])
        n++;
    PyObject *t = PyTuple_New(n);
    for (Py_ssize_t i = 0; t && i < n; i++) {
        PyObject *s = PyUnicode_InternFromString(names[i]);
        if (!s) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

PyObject *fact_fields(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("(NNN)", names_tuple(CONN_FIELDS), names_tuple(EP_FIELDS),
                         names_tuple(RST_FIELDS));
}

int facts_setup(PyObject *classes)
{
    for (int m = 0; m < NMODELS; m++) {
        PyObject *cls = PyDict_GetItemString(classes, MODEL_NAMES[m]);
        if (!cls || !PyType_Check(cls)) {
            PyErr_Format(PyExc_TypeError, "setup: class %s missing", MODEL_NAMES[m]);
            return -1;
        }
        PyObject *keys = names_tuple(FIELDS[m]), *tmpl = PyDict_New(), *set = NULL;
        for (Py_ssize_t i = 0; keys && tmpl && i < PyTuple_GET_SIZE(keys); i++)
            if (PyDict_SetItem(tmpl, PyTuple_GET_ITEM(keys, i), Py_None) < 0)
                Py_CLEAR(tmpl);
        if (keys && tmpl)
            set = PyFrozenSet_New(keys);
        if (!set) {
            Py_XDECREF(keys);
            Py_XDECREF(tmpl);
            return -1;
        }
        Py_INCREF(cls);
        Py_XSETREF(MCLS[m], cls);
        Py_XSETREF(MKEYS[m], keys);
        Py_XSETREF(MTEMPLATE[m], tmpl);
        Py_XSETREF(MNAMESET[m], set);
    }
    for (int i = 0; i < NSTR; i++)
        if (!STR[i] && !(STR[i] = PyUnicode_InternFromString(STR_TEXT[i])))
            return -1;
    if (!A_DICT && !(A_DICT = PyUnicode_InternFromString("__dict__")))
        return -1;
    if (!A_FSET && !(A_FSET = PyUnicode_InternFromString("__pydantic_fields_set__")))
        return -1;
    if (!A_EXTRA && !(A_EXTRA = PyUnicode_InternFromString("__pydantic_extra__")))
        return -1;
    if (!A_PRIV && !(A_PRIV = PyUnicode_InternFromString("__pydantic_private__")))
        return -1;
    return 0;
}

/* A model of kind m from its field values in declaration order; steals every v[i] (NULL: an
 * error is set). What fastmodel.construct(cls, **all_fields) builds. */
static PyObject *model(int m, PyObject **v, int n)
{
    PyObject *keys = MKEYS[m], *d = NULL, *o = NULL, *fs = NULL;
    int ok = n == PyTuple_GET_SIZE(keys);
    if (!ok)
        PyErr_Format(PyExc_SystemError, "%s: %d values", MODEL_NAMES[m], n);
    for (int i = 0; i < n; i++)
        ok = ok && v[i];
    if (ok)
        d = PyDict_Copy(MTEMPLATE[m]);   /* same keys, same order: no resizing */
    for (int i = 0; i < n; i++) {
        if (d && PyDict_SetItem(d, PyTuple_GET_ITEM(keys, i), v[i]) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v[i]);
    }
    if (!d)
        return NULL;
    o = PyBaseObject_Type.tp_new((PyTypeObject *)MCLS[m], EMPTY, NULL);
    fs = o ? PySet_New(MNAMESET[m]) : NULL;
    if (!fs || PyObject_GenericSetAttr(o, A_DICT, d) < 0
        || PyObject_GenericSetAttr(o, A_FSET, fs) < 0
        || PyObject_GenericSetAttr(o, A_EXTRA, Py_None) < 0
        || PyObject_GenericSetAttr(o, A_PRIV, Py_None) < 0)
        Py_CLEAR(o);
    Py_XDECREF(fs);
    Py_DECREF(d);
    return o;
}

static inline PyObject *S(int k) { Py_INCREF(STR[k]); return STR[k]; }
static inline PyObject *I(int64_t v) { return PyLong_FromLongLong(v); }
static inline PyObject *B(int v) { return PyBool_FromLong(v); }
static inline PyObject *Fl(double v) { return PyFloat_FromDouble(v); }
static inline PyObject *optb(int has, int v) { return has ? PyBool_FromLong(v) : none(); }
static inline PyObject *ref(PyObject *o) { Py_INCREF(o); return o; }

static PyObject *fact_id(char c, int64_t n)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%c%lld", c, (long long)n);
    return PyUnicode_FromStringAndSize(buf, len);
}

/* serial_diff: a - b in 32-bit sequence space, signed */
static inline int64_t sdiff(int64_t a, int64_t b)
{
    int64_t d = (a - b) & M32;
    return d >= HALF32 ? d - 0x100000000LL : d;
}

/* facts.models.initial_ttl */
static inline int initial_ttl(int v)
{
    return v <= 32 ? 32 : v <= 64 ? 64 : v <= 128 ? 128 : 255;
}

static inline void addr_key(Key *k, const uint8_t *a, int alen)
{
    memset(k, 0, sizeof *k);
    ((uint8_t *)k->w)[0] = (uint8_t)alen;
    memcpy((uint8_t *)k->w + 1, a, alen);
}

/* addr_str, cached per address (servers repeat) */
static PyObject *addr_name(F *f, const uint8_t *a, int alen)
{
    Key k;
    addr_key(&k, a, alen);
    int32_t i = map_get(&f->names, &k);
    if (i >= 0)
        return ref(f->name_objs[i]);
    char buf[INET6_ADDRSTRLEN];
    if (!inet_ntop(alen == 4 ? AF_INET : AF_INET6, a, buf, sizeof buf))
        return PyErr_SetFromErrno(PyExc_OSError);
    if (f->nnames == f->capnames) {
        int64_t cap = f->capnames ? f->capnames * 2 : 256;
        PyObject **objs = PyMem_RawRealloc(f->name_objs, (size_t)cap * sizeof(PyObject *));
        if (!objs)
            return PyErr_NoMemory();
        f->name_objs = objs;
        f->capnames = cap;
    }
    PyObject *o = PyUnicode_FromString(buf);
    if (!o)
        return NULL;
    if (map_put(&f->names, &k, (int32_t)f->nnames) < 0) {
        Py_DECREF(o);
        return PyErr_NoMemory();
    }
    f->name_objs[f->nnames++] = ref(o);
    return o;
}

/* -- TTL histograms (Half.ttl_hist: the first TTL, then the others as first seen) ---------- */
static int64_t ttl0_count(const Half *h)
{
    int64_t n = h->pkts - h->nrst;
    if (h->other)
        for (int j = 0; j < h->other->n; j++)
            n -= h->other->count[h->other->order[j]];
    return n;
}

static PyObject *ttl_hist(const Half *h)
{
    PyObject *d = PyDict_New();
    if (!d || h->ttl0 < 0)
        return d;
    int n = h->other ? h->other->n : 0;
    for (int j = -1; j < n; j++) {
        int ttl = j < 0 ? h->ttl0 : h->other->order[j];
        PyObject *k = PyLong_FromLong(ttl);
        PyObject *v = j < 0 ? I(ttl0_count(h)) : I(h->other->count[ttl]);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (!d)
            return NULL;
    }
    return d;
}

/* most_common(ttl_hist()): -1 for none; a tie goes to the TTL seen first */
static int half_most_common(const Half *h)
{
    if (h->ttl0 < 0)
        return -1;
    int best = h->ttl0;
    int64_t bc = ttl0_count(h);
    for (int j = 0; h->other && j < h->other->n; j++) {
        int ttl = h->other->order[j];
        if ((int64_t)h->other->count[ttl] > bc) {
            best = ttl;
            bc = h->other->count[ttl];
        }
    }
    return best;
}

/* sorted(ttl_hist()) */
static PyObject *ttl_values(const Half *h)
{
    uint8_t seen[256] = {0};
    int n = 0;
    if (h->ttl0 >= 0) {
        seen[h->ttl0] = 1;
        n = 1 + (h->other ? h->other->n : 0);
        for (int j = 0; h->other && j < h->other->n; j++)
            seen[h->other->order[j]] = 1;
    }
    PyObject *l = PyList_New(n);
    for (int ttl = 0, i = 0; l && ttl < 256; ttl++)
        if (seen[ttl]) {
            PyObject *v = PyLong_FromLong(ttl);
            if (!v) {
                Py_CLEAR(l);
                break;
            }
            PyList_SET_ITEM(l, i++, v);
        }
    return l;
}

/* A host's summed histogram (host_baselines): TTLs in first-seen order with their counts. */
typedef struct { int32_t n, cap; uint8_t *ttl; int64_t *cnt; } Hist;

static int hist_add(Hist *h, int ttl, int64_t n)
{
    for (int32_t j = 0; j < h->n; j++)
        if (h->ttl[j] == ttl) {
            h->cnt[j] += n;
            return 0;
        }
    if (h->n == h->cap) {
        int32_t cap = h->cap ? h->cap * 2 : 4;
        uint8_t *t = PyMem_RawRealloc(h->ttl, (size_t)cap);
        if (t)
            h->ttl = t;
        int64_t *c = PyMem_RawRealloc(h->cnt, (size_t)cap * sizeof(int64_t));
        if (c)
            h->cnt = c;
        if (!t || !c)
            return -1;
        h->cap = cap;
    }
    h->ttl[h->n] = (uint8_t)ttl;
    h->cnt[h->n++] = n;
    return 0;
}

static int hist_add_half(Hist *h, const Half *x)
{
    if (x->ttl0 < 0)
        return 0;
    if (hist_add(h, x->ttl0, ttl0_count(x)) < 0)
        return -1;
    for (int j = 0; x->other && j < x->other->n; j++)
        if (hist_add(h, x->other->order[j], x->other->count[x->other->order[j]]) < 0)
            return -1;
    return 0;
}

/* host_baselines: the most common non-RST TTL of every address some RST claims to come from,
 * over every connection it takes part in. */
static int host_baselines(T *t, F *f)
{
    Key k;
    int32_t nh = 0;
    if (map_init(&f->hosts, 64) < 0)
        return -1;
    for (int64_t i = 0; i < t->nrec; i++) {
        Rec *r = REC(t, i);
        Conn *c = CONN(t, r->conn);
        addr_key(&k, c->addr[r->side], c->alen);
        if (map_get(&f->hosts, &k) < 0 && map_put(&f->hosts, &k, nh++) < 0)
            return -1;
    }
    Hist *hist = PyMem_RawCalloc((size_t)nh + 1, sizeof(Hist));
    f->host_ttl = PyMem_RawMalloc(((size_t)nh + 1) * sizeof(int16_t));
    int err = !hist || !f->host_ttl;
    for (int64_t ci = 0; !err && nh && ci < t->nconn; ci++) {
        Conn *c = CONN(t, ci);
        for (int side = 0; side < 2 && !err; side++) {
            addr_key(&k, c->addr[side], c->alen);
            int32_t j = map_get(&f->hosts, &k);
            if (j >= 0 && hist_add_half(&hist[j], &c->half[side]) < 0)
                err = 1;
        }
    }
    for (int32_t j = 0; hist && j < nh; j++) {
        int best = -1;
        int64_t bc = 0;
        for (int32_t x = 0; x < hist[j].n; x++)
            if (best < 0 || hist[j].cnt[x] > bc) {
                best = hist[j].ttl[x];
                bc = hist[j].cnt[x];
            }
        if (f->host_ttl)
            f->host_ttl[j] = (int16_t)best;
        PyMem_RawFree(hist[j].ttl);
        PyMem_RawFree(hist[j].cnt);
    }
    PyMem_RawFree(hist);
    return err ? -1 : 0;
}

int facts_start(State *s, PyObject *capture)
{
    T *t = &s->t;
    F *f = &s->f;
    memset(f, 0, sizeof(F));
    f->started = 1;
    f->capture = ref(capture);
    map_free(&t->table);   /* lookups are over */
    map_free(&t->frags);
    /* RST records grouped by connection, each group in capture order */
    int32_t *cur = PyMem_RawCalloc((size_t)t->nconn + 1, sizeof(int32_t));
    f->first = PyMem_RawCalloc((size_t)t->nconn + 1, sizeof(int32_t));
    f->order = PyMem_RawMalloc(((size_t)t->nrec + 1) * sizeof(int32_t));
    f->left = PyMem_RawCalloc((size_t)t->nrb + 1, sizeof(int32_t));
    if (!cur || !f->first || !f->order || !f->left || map_init(&f->names, 1 << 10) < 0) {
        PyMem_RawFree(cur);
        PyErr_NoMemory();
        return -1;
    }
    for (int64_t i = 0; i < t->nrec; i++) {
        f->first[REC(t, i)->conn + 1]++;
        f->left[i / BLOCK]++;
    }
    for (int64_t c = 0; c < t->nconn; c++) {
        f->first[c + 1] += f->first[c];
        cur[c] = f->first[c];
    }
    for (int64_t i = 0; i < t->nrec; i++)
        f->order[cur[REC(t, i)->conn]++] = (int32_t)i;
    PyMem_RawFree(cur);
    if (host_baselines(t, f) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void facts_free(F *f)
{
    PyMem_RawFree(f->first);
    PyMem_RawFree(f->order);
    PyMem_RawFree(f->left);
    PyMem_RawFree(f->host_ttl);
    map_free(&f->hosts);
    map_free(&f->names);
    for (int64_t i = 0; i < f->nnames; i++)
        Py_DECREF(f->name_objs[i]);
    PyMem_RawFree(f->name_objs);
    Py_XDECREF(f->capture);
    memset(f, 0, sizeof(F));
}

/* -- connection_model -------------------------------------------------------------------- */
static PyObject *endpoint(F *f, const uint8_t *a, int alen, int port)
{
    PyObject *v[N_EP] = {addr_name(f, a, alen), PyLong_FromLong(port)};
    return model(M_EP, v, N_EP);
}

static PyObject *fin_list(const Conn *c)
{
    PyObject *l = PyList_New(c->nfin);
    for (int j = 0; l && j < c->nfin; j++)
        PyList_SET_ITEM(l, j, ref(c->fin_by[j] == 0 ? S_CLIENT : S_SERVER));
    return l;
}

static PyObject *conn_fact(F *f, int64_t ci, const Conn *c)
{
    const Half *h0 = &c->half[0], *h1 = &c->half[1];
    int fin = c->nfin > 0, rst = c->nrsts > 0;
    PyObject *v[N_CONN];
    int n = 0;
    v[n++] = S(K_CONNECTION);                                   /* kind */
    v[n++] = fact_id('c', ci + 1);                              /* id */
    v[n++] = ref(f->capture);                                   /* capture */
    v[n++] = I(c->ipv);                                         /* ip_version */
    v[n++] = endpoint(f, c->addr[0], c->alen, c->port[0]);      /* client */
    v[n++] = endpoint(f, c->addr[1], c->alen, c->port[1]);      /* server */
    v[n++] = B(c->inferred);                                    /* roles_inferred */
    v[n++] = Fl(c->start);                                      /* start */
    v[n++] = Fl(c->last_ts);                                    /* end */
    v[n++] = I(h0->pkts);                                       /* packets_c2s */
    v[n++] = I(h1->pkts);                                       /* packets_s2c */
    v[n++] = I(h0->byts);                                       /* bytes_c2s */
    v[n++] = I(h1->byts);                                       /* bytes_s2c */
    v[n++] = S(K_HS_NONE + c->hs);                              /* handshake */
    v[n++] = optf(c->has_syn, c->syn_ts);                       /* syn_time */
    v[n++] = optf(c->has_synack, c->synack_time);               /* synack_time */
    v[n++] = opti(c->has_syn, c->syn_seq);                      /* client_isn */
    v[n++] = opti(c->has_synack, c->synack_seq);                /* server_isn */
    v[n++] = S(fin && rst ? K_FIN_RST : fin ? K_FIN : rst ? K_RST : K_OPEN);   /* close */
    v[n++] = fin_list(c);                                       /* fin_by */
    v[n++] = I(c->nrsts);                                       /* rst_count */
    v[n++] = Fl(c->max_gap);                                    /* largest_idle_gap_s */
    v[n++] = optf(c->has_gap_at, c->max_gap_at);                /* largest_idle_gap_at */
    v[n++] = ttl_hist(h0);                                      /* client_ttls */
    v[n++] = ttl_hist(h1);                                      /* server_ttls */
    v[n++] = I(h0->ttl_changes);                                /* client_ttl_changes */
    v[n++] = I(h1->ttl_changes);                                /* server_ttl_changes */
    v[n++] = I(c->maxseg);                                      /* largest_segment */
    v[n++] = B(c->frag);                                        /* fragments_seen */
    v[n++] = B(c->icmp);                                        /* icmp_too_big_seen */
    v[n++] = opti(c->has_pmtu, c->pmtu);                        /* path_mtu */
    return model(M_CONN, v, n);
}

/* -- rst_event ----------------------------------------------------------------------------- */
/* ConnRsts: facts about all RSTs of one connection */
typedef struct { int seq_differ[2], ack_differ[2], both; } Group;

static void group_of(T *t, const F *f, int32_t a, int32_t e, Group *g)
{
    const Rec *first[2] = {NULL, NULL};
    memset(g, 0, sizeof *g);
    for (int32_t j = a; j < e; j++) {
        const Rec *r = REC(t, f->order[j]);
        const Rec *x = first[r->side];
        if (!x)
            first[r->side] = r;
        else {
            g->seq_differ[r->side] |= r->seg.seq != x->seg.seq;
            g->ack_differ[r->side] |= r->seg.ack != x->seg.ack;
        }
    }
    g->both = first[0] && first[1];
}

/* _seq_position; *has_off says whether *off is not None */
static int seq_position(const Rec *r, int64_t *off, int *has_off)
{
    *has_off = 0;
    if (!r->has_sender_nxt)
        return K_UNKNOWN;
    *off = sdiff(r->seg.seq, r->sender_nxt);
    *has_off = 1;
    if (*off == 0)
        return K_EXACT;
    if (*off < 0)
        return K_OUTSIDE;
    if (!r->has_other_last)
        return K_UNKNOWN;
    /* The compiled pass sees no window-scale options (TcpSegment carries none), so the scale
     * is unknown: small offsets are in any window, huge ones in none. */
    int64_t window = r->other_last.window;
    if (*off < window)
        return K_IN_WINDOW;
    return *off < (window << MAX_WSCALE) ? K_UNKNOWN : K_OUTSIDE;
}

static int ack_position(const Rec *r, int64_t *off, int *has_off)
{
    *has_off = 0;
    if (!(r->seg.flags & ACK))
        return K_NONE;
    if (!r->has_other_nxt)
        return K_UNKNOWN;
    *off = sdiff(r->seg.ack, r->other_nxt);
    *has_off = 1;
    return *off == 0 ? K_EXACT : *off < 0 ? K_BEHIND : K_AHEAD;
}

/* _seq_change: Weaver/Sommer/Paxson RST_SEQ_CHANGE against the previous RST of the sender */
static int seq_change(const Rec *r, const Rec *prev)
{
    if (!prev)
        return 0;
    int64_t seq2 = r->seg.seq;
    if (sdiff(seq2, prev->seg.seq) <= 2 || r->seg.ts - prev->seg.ts >= RST_SEQ_CHANGE_MAX_S)
        return 0;
    if (sdiff(seq2, r->first_rst_nxt) <= 0)
        return 0;
    if (r->has_ola && sdiff(seq2, r->other_last_ack) <= 2)
        return 0;
    return 1;
}

/* _behind_data */
static int behind_data(const Rec *r)
{
    if (!r->has_ola || r->bytes_before[r->side] == 0)
        return 0;
    return sdiff(r->seg.seq, r->other_last_ack) < 0;
}

static PyObject *excerpt(const Seg *s)
{
    static const char hex[] = "0123456789abcdef";
    char buf[EXCERPT_BYTES * 4];
    int n = 0;
    for (int i = 0; i < s->plcap && i < EXCERPT_BYTES; i++) {
        uint8_t b = s->payload[i];
        if (b >= 0x20 && b < 0x7F)
            buf[n++] = (char)b;
        else {
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[b >> 4];
            buf[n++] = hex[b & 15];
        }
    }
    return PyUnicode_DecodeASCII(buf, n, NULL);
}

static PyObject *rst_fact(F *f, T *t, const Conn *c, PyObject *conn, const Rec *r, int64_t ri,
                          const Rec *prev, const Group *g)
{
    const Seg *seg = &r->seg;
    int side = r->side, ttl = seg->ttl, init = initial_ttl(ttl);
    const Half *sh = &c->half[side];
    int base_conn = half_most_common(sh), base_host = -1, baseline, source;
    Key k;
    addr_key(&k, c->addr[side], c->alen);
    int32_t hj = map_get(&f->hosts, &k);
    if (hj >= 0)
        base_host = f->host_ttl[hj];
    if (base_conn >= 0)
        baseline = base_conn, source = K_CONNECTION;
    else if (base_host >= 0)
        baseline = base_host, source = K_HOST;
    else
        baseline = -1, source = K_NONE;
    int has_base = baseline >= 0, base_init = has_base ? initial_ttl(baseline) : -1;
    int nhist = sh->ttl0 < 0 ? 0 : 1 + (sh->other ? sh->other->n : 0);

    int has_ipid = seg->ipv == 4 && seg->ip_id >= 0;
    int64_t ip_id = seg->ip_id;
    const Seg *mine = r->has_sender_last ? &r->sender_last : NULL;
    const Seg *peer = r->has_other_last ? &r->other_last : NULL;
    int has_gap = has_ipid && mine;
    int64_t gap = has_gap ? (ip_id - mine->ip_id) & 0xFFFF : 0;
    int syn = r->syn_seen;
    const Seg *trig = r->has_trigger ? &r->trigger : NULL;

    int64_t seq_off = 0, ack_off = 0;
    int has_seq_off, has_ack_off;
    int seq_pos = seq_position(r, &seq_off, &has_seq_off);
    int ack_pos = ack_position(r, &ack_off, &has_ack_off);

    /* _silence: the longer silence (a tie keeps the one before the RST) */
    int has_sil = r->has_idle_before || r->has_idle_trigger, has_earlier = 0;
    double silence = 0, earlier = 0;
    if (r->has_idle_before && !(r->has_idle_trigger && r->idle_trigger > r->idle_before)) {
        silence = r->idle_before;
        has_earlier = r->has_egb;
        earlier = r->egb;
    } else if (r->has_idle_trigger) {
        silence = r->idle_trigger;
        has_earlier = r->has_egt;
        earlier = r->egt;
    }
    has_earlier = has_sil && has_earlier;

    PyObject *v[N_RST];
    int n = 0;
    v[n++] = S(K_RST);                                          /* kind */
    v[n++] = fact_id('r', ri + 1);                              /* id */
    v[n++] = ref(f->capture);                                   /* capture */
    v[n++] = I(seg->frame);                                     /* frame */
    v[n++] = fact_id('c', (int64_t)r->conn + 1);                /* connection_id */
    v[n++] = ref(conn);                                         /* connection */
    v[n++] = ref(side == 0 ? S_CLIENT : S_SERVER);              /* claimed_sender */
    v[n++] = Fl(seg->ts);                                       /* time */
    v[n++] = S(seg->flags & ACK ? K_FLAG_RSTACK : K_FLAG_RST);  /* flags */
    v[n++] = PyLong_FromUnsignedLong(seg->seq);                 /* seq */
    v[n++] = PyLong_FromUnsignedLong(seg->ack);                 /* ack */
    v[n++] = I(seg->ipv);                                       /* ip_version */
    v[n++] = B(seg->reserved != 0);                             /* reserved_bits_set */
    v[n++] = I(seg->payload_len);                               /* rst_payload_len */
    v[n++] = I(ttl);                                            /* ttl */
    v[n++] = I(init);                                           /* initial_ttl */
    v[n++] = I(init - ttl);                                     /* ttl_decrements */
    v[n++] = I(init - ttl + 1);                                 /* tracert_hop */
    v[n++] = opti(base_conn >= 0, base_conn);                   /* baseline_ttl_conn */
    v[n++] = ttl_values(sh);                                    /* baseline_ttl_conn_values */
    v[n++] = opti(base_host >= 0, base_host);                   /* baseline_ttl_host */
    v[n++] = opti(has_base, base_init);                         /* baseline_initial_ttl */
    v[n++] = opti(has_base, base_init - baseline);              /* baseline_decrements */
    v[n++] = S(source);                                         /* baseline_source */
    v[n++] = opti(has_base, ttl - baseline);                    /* ttl_delta */
    v[n++] = optb(has_base, ttl == baseline);                   /* ttl_matches_baseline */
    v[n++] = optb(has_base, init != base_init);                 /* initial_ttl_differs */
    v[n++] = B(nhist > 1);                                      /* baseline_ttl_varies */
    v[n++] = opti(has_ipid, ip_id);                             /* ip_id */
    v[n++] = opti(has_gap, gap);                                /* ip_id_gap */
    v[n++] = optb(has_gap, 1 <= gap && gap <= IP_ID_SEQUENCE_MAX);   /* ip_id_in_sequence */
    v[n++] = optb(has_ipid && peer, peer && ip_id == peer->ip_id);   /* ip_id_equals_other_last */
    v[n++] = optb(has_ipid, ip_id == 0);                        /* ip_id_zero */
    v[n++] = optb(has_ipid && syn && side == 1, ip_id == c->syn_ip_id);   /* ip_id_equals_syn */
    v[n++] = I(seg->window);                                    /* window */
    v[n++] = optb(peer != NULL, peer && seg->window == peer->window);   /* window_equals_other_last */
    v[n++] = S(seq_pos);                                        /* seq_position */
    v[n++] = opti(has_seq_off, seq_off);                        /* seq_offset */
    v[n++] = S(ack_pos);                                        /* ack_position */
    v[n++] = opti(has_ack_off, ack_off);                        /* ack_offset */
    v[n++] = I(c->nrsts);                                       /* rsts_in_connection */
    v[n++] = I(r->index);                                       /* rst_index_in_connection */
    v[n++] = B(g->seq_differ[side]);                            /* rst_seq_differ */
    v[n++] = B(g->ack_differ[side]);                            /* rst_ack_differ */
    v[n++] = B(seq_change(r, prev));                            /* rst_seq_change */
    v[n++] = B(r->has_data_after);                              /* data_after_rst */
    v[n++] = optf(r->has_data_after, r->data_after_s);          /* data_after_rst_s */
    v[n++] = B(behind_data(r));                                 /* rst_behind_data */
    v[n++] = B(g->both);                                        /* rst_both_directions */
    v[n++] = optf(syn, seg->ts - c->syn_ts);                    /* since_syn_s */
    v[n++] = Fl(seg->ts - c->start);                            /* since_start_s */
    v[n++] = B(r->hs == HS_COMPLETE);                           /* handshake_completed */
    v[n++] = B(r->syn_seen);                                    /* syn_seen */
    v[n++] = B(r->synack_seen);                                 /* synack_seen */
    v[n++] = B(side == 1 && (seg->flags & ACK) && syn && !r->synack_seen
               && (int64_t)seg->ack == (((int64_t)c->syn_seq + 1) & M32));   /* rst_answers_syn */
    v[n++] = B(side == 0 && r->synack_seen && r->hs == HS_SYNACK);   /* rst_answers_synack */
    v[n++] = B(r->synack_after);                                /* synack_after_rst */
    v[n++] = optf(r->has_idle_before, r->idle_before);          /* idle_before_s */
    v[n++] = optf(r->has_idle_sender, r->idle_sender);          /* idle_sender_s */
    v[n++] = optf(r->has_idle_trigger, r->idle_trigger);        /* idle_before_trigger_s */
    v[n++] = optf(has_sil, silence);                            /* idle_silence_s */
    v[n++] = optf(has_earlier, earlier);                        /* earlier_gap_max_s */
    v[n++] = optf(has_earlier, silence / (GAP_FLOOR_S > earlier ? GAP_FLOOR_S : earlier));
                                                                /* idle_silence_ratio */
    v[n++] = I(r->packets_before);                              /* packets_before */
    v[n++] = I(r->bytes_before[0]);                             /* bytes_c2s_before */
    v[n++] = I(r->bytes_before[1]);                             /* bytes_s2c_before */
    v[n++] = I(r->bytes_before[0] + r->bytes_before[1]);        /* payload_bytes_before */
    v[n++] = optf(trig != NULL, trig ? seg->ts - trig->ts : 0); /* trigger_delta_s */
    v[n++] = opti(trig != NULL, trig ? trig->payload_len : 0);  /* trigger_len */
    v[n++] = trig ? excerpt(trig) : none();                     /* trigger_excerpt */
    v[n++] = opti(trig != NULL, trig ? trig->frame : 0);        /* trigger_frame */
    v[n++] = I(r->maxseg_before);                               /* largest_segment_before */
    v[n++] = B(c->frag);                                        /* fragments_seen */
    v[n++] = B(c->icmp);                                        /* icmp_too_big_seen */
    v[n++] = opti(c->has_pmtu, c->pmtu);                        /* path_mtu */
    v[n++] = B(r->challenge_ack);                               /* challenge_ack_seen */
    (void)t;
    return model(M_RST, v, n);
}

/* iter_built's step: the next connection and its RSTs, (Connection, [RstEvent, ...]); NULL
 * without an error at the end. Blocks of connections and RST records are freed once built. */
PyObject *facts_next(State *s)
{
    T *t = &s->t;
    F *f = &s->f;
    if (f->next >= t->nconn)
        return NULL;
    int64_t ci = f->next++;
    const Conn *c = CONN(t, ci);
    int32_t a = f->first[ci], e = f->first[ci + 1];
    PyObject *conn = conn_fact(f, ci, c), *events = conn ? PyList_New(e - a) : NULL;
    if (!events) {
        Py_XDECREF(conn);
        return NULL;
    }
    if (e > a) {
        Group g;
        const Rec *last[2] = {NULL, NULL};
        group_of(t, f, a, e, &g);
        for (int32_t j = a; j < e; j++) {
            const Rec *r = REC(t, f->order[j]);
            PyObject *ev = rst_fact(f, t, c, conn, r, f->order[j], last[r->side], &g);
            if (!ev) {
                Py_DECREF(conn);
                Py_DECREF(events);
                return NULL;
            }
            PyList_SET_ITEM(events, j - a, ev);
            last[r->side] = r;
        }
        for (int32_t j = a; j < e; j++)
            if (--f->left[f->order[j] / BLOCK] == 0)
                free_rec_block(t, f->order[j] / BLOCK);
    }
    if (ci % BLOCK == BLOCK - 1 || ci == t->nconn - 1)
        free_conn_block(t, ci / BLOCK);
    PyObject *pair = PyTuple_Pack(2, conn, events);
    Py_DECREF(conn);
    Py_DECREF(events);
    return pair;
}
