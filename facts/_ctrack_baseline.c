/* What the facts need of the whole state before the first one is built: host-wide TTL
 * baselines (facts.rst.host_baselines), RST records grouped by connection, address strings;
 * and the TTL histograms of one direction (Half.ttl_hist). */
#include "_ctrack.h"
#include <arpa/inet.h>
#include <sys/socket.h>

/* addr_str, cached per address (servers repeat) */
PyObject *addr_name(F *f, const uint8_t *a, int alen)
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
int64_t ttl0_count(const Half *h)
{
    int64_t n = h->pkts - h->nrst;
    if (h->other)
        for (int j = 0; j < h->other->n; j++)
            n -= h->other->count[h->other->order[j]];
    return n;
}

PyObject *ttl_hist(const Half *h)
{
    PyObject *d = PyDict_New();
    if (!d || h->ttl0 < 0)
        return d;
    int n = h->other ? h->other->n : 0;
    for (int j = -1; j < n; j++) {
        int ttl = j < 0 ? h->ttl0 : h->other->order[j];
        PyObject *k = PyLong_FromLong(ttl);
        PyObject *v = j < 0 ? py_int(ttl0_count(h)) : py_int(h->other->count[ttl]);
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
int half_most_common(const Half *h)
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
PyObject *ttl_values(const Half *h)
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

