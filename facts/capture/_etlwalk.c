/* The hot loops of the compiled .etl reader (etl_fastc): the event walk of a buffer, the time
 * merge of processor streams and the pktmon fold. Python keeps the hand-overs to the
 * general code (etl_events.walk_buffer, EtlCapture.fold_records), the clock and building
 * the packets; each function here mirrors Python code exactly (tests compare them, also on
 * random and damaged bytes). Every read is bounds-checked.
 *
 * walk(body, p, last_group, last_number, last_app, pktmon_guid, ndis_guid, size_at_4
 *      [, extra[, max_items]])
 *   -> (items, p, last_group, last_number, last_app, pktmon_events, ndis_events)
 * One decompressed buffer body from offset p: steps over records the reader never reads
 * and over pktmon back-to-back copies (same PktGroupId/PktNumber as the packet just passed,
 * higher AppearanceCount), as etl_fast._fused and etl_fast._other_record do, and returns
 * the events left: items (ts, key, app, code, dir, orig, start, end, body, extra); key is
 * PktGroupId << 16 | PktNumber for pktmon (code: link type 1 or 101, dir: DirTag & 7) and
 * None for a whole NDIS packet (code: keyword & media bits, dir: keyword bits 32-33,
 * app and orig 0). extra is None, except: with extra 1, an Ethernet frame that
 * fastpcap.fast_segment decodes in place (IPv4 without options, not fragmented, a whole
 * TCP header) has there what that needs: (src, dst, sport, dport, ttl, ip_id, seq, ack,
 * flags, reserved, window, payload_len, payload, truncated); with extra 2 every item has
 * its frame's bytes, body[start:end]. Copied here, while the walk has the frame in the
 * CPU caches, not later from a buffer they have long dropped (with several streams
 * merged, pktmon 3 copies: 1.27x -> 1.15x pcap). max_items > 0:
 * the walk also stops once it returns that many items, p then the next record (the reader
 * walks a buffer in pieces, each just before it uses them). p is -1 at the end of the
 * body, else the offset of the event the general walk must judge. last_group is None
 * until a pktmon packet was passed.
 *
 * merge(streams) and fold(...) are described where they are defined.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#define HOT_LEN 114
#define END_ (-1)
#define STOP_ (-2)

static inline uint16_t rd16(const unsigned char *b) { return (uint16_t)(b[0] | (b[1] << 8)); }
static inline uint32_t rd32(const unsigned char *b)
{
    return (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
}
static inline uint64_t rd64(const unsigned char *b) { return (uint64_t)rd32(b) | ((uint64_t)rd32(b + 4) << 32); }
static inline unsigned be16(const unsigned char *b) { return (unsigned)(b[0] << 8 | b[1]); }
static inline unsigned long be32(const unsigned char *b)
{
    return (unsigned long)b[0] << 24 | (unsigned long)b[1] << 16 | (unsigned long)b[2] << 8 | b[3];
}

/* fastpcap.fast_segment's fields of the Ethernet frame b[start:end] (a new reference; None
 * when that function would hand the frame to the general decoder). */
static PyObject *tcp_fields(const unsigned char *b, Py_ssize_t start, Py_ssize_t end)
{
    if (end - start < 54)
        Py_RETURN_NONE;
    const unsigned char *f = b + start;
    unsigned totlen = be16(f + 16), frag = be16(f + 20), off_res = f[46];
    if (be16(f + 12) != 0x0800 || f[14] != 0x45 || f[23] != 6 || (frag & 0x3FFF)
            || totlen < 40 || off_res < 0x50)
        Py_RETURN_NONE;
    Py_ssize_t doff = (off_res >> 4) << 2, plen = (Py_ssize_t)totlen - 20 - doff;
    Py_ssize_t data_start = start + 34 + doff, ip_end = start + 14 + totlen;
    /* Built item by item: Py_BuildValue's format parsing cost as much as the struct
     * unpack this replaces. */
    PyObject *t = PyTuple_New(14);
    if (t == NULL)
        return NULL;
    PyObject *x;
#define SET(i, value) \
    do { if ((x = (value)) == NULL) goto fail; PyTuple_SET_ITEM(t, i, x); } while (0)
    SET(0, PyBytes_FromStringAndSize((const char *)f + 26, 4));
    SET(1, PyBytes_FromStringAndSize((const char *)f + 30, 4));
    SET(2, PyLong_FromLong((long)be16(f + 34)));
    SET(3, PyLong_FromLong((long)be16(f + 36)));
    SET(4, PyLong_FromLong((long)f[22]));
    SET(5, PyLong_FromLong((long)be16(f + 18)));
    SET(6, PyLong_FromUnsignedLong(be32(f + 38)));
    SET(7, PyLong_FromUnsignedLong(be32(f + 42)));
    SET(8, PyLong_FromLong((long)f[47]));
    SET(9, PyLong_FromLong((long)(off_res & 0x0F)));
    SET(10, PyLong_FromLong((long)be16(f + 48)));
    SET(11, PyLong_FromSsize_t(plen > 0 ? plen : 0));
    Py_ssize_t pend = ip_end <= end ? ip_end : end;
    SET(12, PyBytes_FromStringAndSize((const char *)b + data_start,
                                      pend > data_start ? pend - data_start : 0));
    SET(13, PyBool_FromLong(ip_end > end));
#undef SET
    PyObject_GC_UnTrack(t);         /* ints, bytes and bools: see append_item */
    return t;
fail:
    Py_DECREF(t);                   /* unset slots are NULL: tuple dealloc skips them */
    return NULL;
}

/* etl_fast._other_record: caller guarantees p >= 0 and p + 8 <= n. */
static Py_ssize_t other_record(const unsigned char *b, Py_ssize_t p, Py_ssize_t n,
                               const unsigned char *pm_guid, const unsigned char *nd_guid,
                               const unsigned char *size_at_4)
{
    unsigned htype = b[p + 2], marker = b[p + 3];
    Py_ssize_t size;
    if (!((htype == 0x13 || htype == 0x12) && (marker & 0x80))) {
        uint32_t word = rd32(b + p);
        if (word == 0xFFFFFFFFu || word == 0)
            return END_;
        size = rd16(b + (size_at_4[htype] ? p + 4 : p));
        if (size < 8 || p + size > n)
            return STOP_;
        return p + ((size + 7) & ~(Py_ssize_t)7);
    }
    size = rd16(b + p);
    if (size < 80 || p + size > n)
        return STOP_;
    Py_ssize_t nxt = p + ((size + 7) & ~(Py_ssize_t)7);
    if (p + 56 > n)
        return nxt;
    unsigned flags = rd16(b + p + 4), eid = rd16(b + p + 40);
    if (memcmp(b + p + 24, pm_guid, 16) == 0) {
        if ((eid != 160 && eid != 170) || (!(flags & 1) && size < HOT_LEN))
            return nxt;
        return STOP_;
    }
    return memcmp(b + p + 24, nd_guid, 16) == 0 ? STOP_ : nxt;
}

/* The fold key PktGroupId << 16 | PktNumber. It needs up to 80 bits (the factory's
 * PktGroupIds have high bits set, as pktmon's may): then built from public API as
 * (PktGroupId >> 48) << 64 | the low 64 bits, the high part (constant over long runs of
 * packets) kept from the previous key. */
static PyObject *high_part;
static uint64_t high_value;

static PyObject *make_key(uint64_t group, unsigned number)
{
    if (group < ((uint64_t)1 << 48))
        return PyLong_FromUnsignedLongLong((group << 16) | number);
    uint64_t hi = group >> 48;
    if (high_part == NULL || hi != high_value) {
        PyObject *h = PyLong_FromUnsignedLongLong(hi), *shift = PyLong_FromLong(64), *v = NULL;
        if (h && shift)
            v = PyNumber_Lshift(h, shift);
        Py_XDECREF(h);
        Py_XDECREF(shift);
        if (v == NULL)
            return NULL;
        Py_XSETREF(high_part, v);
        high_value = hi;
    }
    PyObject *lo = PyLong_FromUnsignedLongLong((group << 16) | number);
    if (lo == NULL)
        return NULL;
    PyObject *key = PyNumber_Or(high_part, lo);
    Py_DECREF(lo);
    return key;
}

/* An item's last element (a new reference, NULL on error): see walk. */
static PyObject *extra_of(int extra, const unsigned char *b, Py_ssize_t start, Py_ssize_t end,
                          int ethernet)
{
    if (extra == 1 && ethernet)
        return tcp_fields(b, start, end);
    if (extra == 2)
        return PyBytes_FromStringAndSize((const char *)b + start, end - start);
    Py_RETURN_NONE;
}

static int append_item(PyObject *items, long long ts, PyObject *key, unsigned app,
                       unsigned long long code, unsigned dir, unsigned orig,
                       Py_ssize_t start, Py_ssize_t end, PyObject *body, PyObject *extra)
{
    /* key: a new reference (stolen here) or NULL for None; body: borrowed; extra: a new
     * reference (stolen) or NULL for None */
    PyObject *t = PyTuple_New(10);
    if (t == NULL) {
        Py_XDECREF(key);
        Py_XDECREF(extra);
        return -1;
    }
    Py_INCREF(body);
    PyTuple_SET_ITEM(t, 8, body);
    if (extra == NULL) {
        extra = Py_None;
        Py_INCREF(extra);
    }
    PyTuple_SET_ITEM(t, 9, extra);
    if (key == NULL) {
        key = Py_None;
        Py_INCREF(key);
    }
    PyTuple_SET_ITEM(t, 1, key);
    PyObject *v;
    if (!(v = PyLong_FromLongLong(ts))) goto fail;
    PyTuple_SET_ITEM(t, 0, v);
    if (!(v = PyLong_FromUnsignedLong(app))) goto fail;
    PyTuple_SET_ITEM(t, 2, v);
    if (!(v = PyLong_FromUnsignedLongLong(code))) goto fail;
    PyTuple_SET_ITEM(t, 3, v);
    if (!(v = PyLong_FromUnsignedLong(dir))) goto fail;
    PyTuple_SET_ITEM(t, 4, v);
    if (!(v = PyLong_FromUnsignedLong(orig))) goto fail;
    PyTuple_SET_ITEM(t, 5, v);
    if (!(v = PyLong_FromSsize_t(start))) goto fail;
    PyTuple_SET_ITEM(t, 6, v);
    if (!(v = PyLong_FromSsize_t(end))) goto fail;
    PyTuple_SET_ITEM(t, 7, v);
    /* Only ints, None and bytes inside: such a tuple can be in no reference cycle, and
     * tracked it would be traversed by every young-generation collection until CPython
     * untracks it there itself -- for each of the hundreds of thousands of items. */
    if (PyBytes_CheckExact(body))
        PyObject_GC_UnTrack(t);
    int rc = PyList_Append(items, t);
    Py_DECREF(t);
    return rc;
fail:
    Py_DECREF(t);       /* unset slots are NULL: tuple dealloc skips them */
    return -1;
}

static PyObject *walk(PyObject *self, PyObject *args)
{
    (void)self;
    Py_buffer body = {0}, pmg = {0}, ndg = {0}, sz4 = {0};
    Py_ssize_t p;
    PyObject *last_group_obj, *result = NULL, *items = NULL;
    unsigned last_number, last_app;
    int extra = 0;
    Py_ssize_t max_items = 0;
    if (!PyArg_ParseTuple(args, "y*nOIIy*y*y*|in", &body, &p, &last_group_obj, &last_number,
                          &last_app, &pmg, &ndg, &sz4, &extra, &max_items))
        return NULL;
    /* The merged (multi-stream) reader mixes items of many buffers: each carries its body. */
    PyObject *tag = body.obj;
    if (pmg.len != 16 || ndg.len != 16 || sz4.len != 256) {
        PyErr_SetString(PyExc_ValueError, "walk: guids must be 16 bytes, size_at_4 256");
        goto done;
    }
    if (p < 0) {
        PyErr_SetString(PyExc_ValueError, "walk: negative offset");
        goto done;
    }
    int have_last = last_group_obj != Py_None;
    uint64_t last_group = 0;
    if (have_last) {
        last_group = PyLong_AsUnsignedLongLong(last_group_obj);
        if (last_group == (uint64_t)-1 && PyErr_Occurred())
            goto done;
    }
    const unsigned char *b = body.buf, *pm_guid = pmg.buf, *nd_guid = ndg.buf,
                        *size_at_4 = sz4.buf;
    const Py_ssize_t n = body.len, limit = n - HOT_LEN;
    Py_ssize_t pm_events = 0, nd_events = 0;
    if (!(items = PyList_New(0)))
        goto done;
    for (;;) {
        if (p > limit) {
            if (p + 8 > n) {
                p = -1;
                break;
            }
            Py_ssize_t q = other_record(b, p, n, pm_guid, nd_guid, size_at_4);
            if (q >= 0) {
                p = q;
                continue;
            }
            if (q == END_)
                p = -1;
            break;
        }
        const unsigned char *e = b + p;     /* p <= n - 114: all fields below in bounds */
        Py_ssize_t size = rd16(e);
        unsigned hm = rd16(e + 2), flags = rd16(e + 4), eid = rd16(e + 40);
        if ((hm & 0x80FE) != 0x8012 || size < 80 || p + size > n) {
            Py_ssize_t q = other_record(b, p, n, pm_guid, nd_guid, size_at_4);
            if (q >= 0) {
                p = q;
                continue;
            }
            if (q == END_)
                p = -1;
            break;
        }
        Py_ssize_t step = (size + 7) & ~(Py_ssize_t)7;
        if (memcmp(e + 24, pm_guid, 16) == 0) {
            uint64_t group = rd64(e + 80);
            unsigned number = rd16(e + 88), app = rd16(e + 90);
            if (eid == 160 && have_last && number == last_number && group == last_group
                    && app > last_app && size >= HOT_LEN && !(flags & 1)) {
                pm_events++;                    /* a back-to-back copy */
                last_app = app;
                p += step;
                continue;
            }
            if (eid != 160) {
                if (eid != 170) {
                    p += step;
                    continue;
                }
                break;                          /* a drop */
            }
            if ((flags & 1) || !group)          /* extended data items */
                break;
            if (size < HOT_LEN) {
                p += step;
                continue;
            }
            unsigned ptype = rd16(e + 94);
            if (ptype != 1 && ptype != 3)
                break;                          /* Wi-Fi or unknown */
            pm_events++;
            have_last = 1;
            last_group = group;
            last_number = number;
            last_app = app;
            Py_ssize_t start = p + HOT_LEN, end = start + rd16(e + 112);
            if (end > p + size)
                end = p + size;
            PyObject *key = make_key(group, number), *more = NULL;
            if (key != NULL && !(more = extra_of(extra, b, start, end, ptype == 1)))
                Py_CLEAR(key);
            if (key == NULL || append_item(items, (long long)rd64(e + 16), key, app,
                                           ptype == 1 ? 1 : 101, rd16(e + 92) & 7,
                                           rd16(e + 110), start, end, tag, more) < 0)
                goto fail;
        }
        else if (memcmp(e + 24, nd_guid, 16) == 0) {
            if (flags & 1)
                break;
            if (eid != 1001 || size < 92) {
                p += step;
                continue;
            }
            uint64_t kw = rd64(e + 48);
            if ((kw & 0xC0000000u) != 0xC0000000u)
                break;                          /* a fragment */
            nd_events++;
            Py_ssize_t start = p + 92, end = start + rd32(e + 88);
            if (end > p + size)
                end = p + size;
            PyObject *more = extra_of(extra, b, start, end, !(kw & 0x10200u));
            if (more == NULL)
                goto fail;
            if (append_item(items, (long long)rd64(e + 16), NULL, 0, kw & 0x10200u,
                            (unsigned)((kw >> 32) & 3), 0, start, end, tag, more) < 0)
                goto fail;
        }
        p += step;
        if (max_items > 0 && PyList_GET_SIZE(items) >= max_items)
            break;                              /* p: where the next call goes on */
    }
    PyObject *lg;
    if (have_last)
        lg = PyLong_FromUnsignedLongLong(last_group);
    else {
        lg = Py_None;
        Py_INCREF(lg);
    }
    if (lg == NULL)
        goto fail;
    result = Py_BuildValue("(NnNIInn)", items, p, lg, last_number, last_app,
                           pm_events, nd_events);
    items = NULL;       /* "N" consumed it, also when the build failed */
    goto done;
fail:
    Py_CLEAR(items);
done:
    Py_XDECREF(items);
    PyBuffer_Release(&body);
    if (pmg.obj) PyBuffer_Release(&pmg);
    if (ndg.obj) PyBuffer_Release(&ndg);
    if (sz4.obj) PyBuffer_Release(&sz4);
    return result;
}


/* ---- merge(streams): etl_buffers.merge_streams, compiled ----------------------------------
 * The same algorithm, step for step, so that the lists come out in the same order and cut
 * at the same places: load the next list of the stream furthest behind (the first of those
 * equally far behind; a stream not yet loaded is furthest behind), then every pooled event
 * no later than the least advanced stream's last loaded timestamp is final. The pool is
 * kept stably sorted by timestamp at every load instead of sorted at each cut -- a stable
 * sort of (sorted pool + new events) is their stable merge, so the result is the same --
 * and head_ts is what the Python code reads as pool[0][0] (its pool is unsorted between
 * cuts). Timestamps are item[0] as int64 (every walk produces signed 64-bit ones). */

/* An int64 from a Python int. PyLong_AsLongLong goes through a byte array for ints of more
 * than one digit (every timestamp); the overflow variant reads the digits directly. */
static int as_int64(PyObject *v, long long *out)
{
    int ovf;
    long long x = PyLong_AsLongLongAndOverflow(v, &ovf);
    if (ovf) {
        PyErr_SetString(PyExc_OverflowError, "timestamp out of int64 range");
        return -1;
    }
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = x;
    return 0;
}

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

static PyTypeObject MergerType = {
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

static PyObject *merge(PyObject *self, PyObject *streams)
{
    (void)self;
    return (PyObject *)merger_new_from(streams);
}

/* ---- fold(items, i, frame, live, older, generation_start, window, dirs) -------------------
 * The fold of the compiled readers' loop (etl_fastc) for a list of walk items in time order,
 * from index i: a whole NDIS packet (key None) is kept; a pktmon copy (key > 3) is folded
 * exactly as fold_records folds it -- a later copy (AppearanceCount above the one
 * remembered for its key, in live or else older) updates the memory and is dropped, any
 * other becomes the next frame and is remembered as (AppearanceCount, frame, direction) in
 * live, which rolls over to older once the copy is more than window after
 * generation_start. The first item of walk_buffer's general form (key 1-3) stops the fold:
 * i is then its index, else len(items). Returns (kept, i, frame, live, older,
 * generation_start); the kept items are frames frame+1, frame+2, ... in order. */

static int item_app(PyObject *e, long *app)
{
    PyObject *v;
    if (PyTuple_Check(e) && PyTuple_GET_SIZE(e) > 0)
        v = PyTuple_GET_ITEM(e, 0);
    else if (PyList_Check(e) && PyList_GET_SIZE(e) > 0)
        v = PyList_GET_ITEM(e, 0);
    else {
        PyErr_SetString(PyExc_TypeError, "fold: a remembered packet must be a tuple or list");
        return -1;
    }
    *app = PyLong_AsLong(v);
    return (*app == -1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *remembered(PyObject *app, PyObject *frame, PyObject *direction)
{
    PyObject *t = PyTuple_New(3);
    if (t != NULL) {
        PyTuple_SET_ITEM(t, 0, Py_NewRef(app));
        PyTuple_SET_ITEM(t, 1, Py_NewRef(frame));
        PyTuple_SET_ITEM(t, 2, Py_NewRef(direction));
        PyObject_GC_UnTrack(t);     /* scalars only: see append_item */
    }
    return t;
}

static PyObject *fold(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *items, *live, *older, *dirs, *kept = NULL, *result = NULL;
    Py_ssize_t i, frame;
    long long gen, window;
    if (!PyArg_ParseTuple(args, "O!nnO!O!LLO!", &PyList_Type, &items, &i, &frame,
                          &PyDict_Type, &live, &PyDict_Type, &older, &gen, &window,
                          &PyTuple_Type, &dirs))
        return NULL;
    if (PyTuple_GET_SIZE(dirs) != 8 || i < 0 || window < 0) {
        PyErr_SetString(PyExc_ValueError, "fold: dirs must hold 8 directions, i and window >= 0");
        return NULL;
    }
    if (i > PyList_GET_SIZE(items))
        i = PyList_GET_SIZE(items);
    Py_INCREF(live);
    Py_INCREF(older);
    if (!(kept = PyList_New(0)))
        goto done;
    for (; i < PyList_GET_SIZE(items); i++) {
        PyObject *it = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(it) || PyTuple_GET_SIZE(it) < 2) {
            PyErr_SetString(PyExc_TypeError, "fold: items must be walk tuples");
            goto done;
        }
        PyObject *key = PyTuple_GET_ITEM(it, 1);
        if (key != Py_None) {
            int ovf;
            if (!PyLong_Check(key))
                break;
            long long k = PyLong_AsLongLongAndOverflow(key, &ovf);
            if (k == -1 && PyErr_Occurred())
                goto done;
            if (ovf < 0 || (ovf == 0 && k <= 3))
                break;                                  /* walk_buffer's general form */
            if (PyTuple_GET_SIZE(it) < 5) {
                PyErr_SetString(PyExc_TypeError, "fold: items must be walk tuples");
                goto done;
            }
            PyObject *app_obj = PyTuple_GET_ITEM(it, 2);
            long app = PyLong_AsLong(app_obj);
            if (app == -1 && PyErr_Occurred())
                goto done;
            Py_ssize_t d = PyLong_AsSsize_t(PyTuple_GET_ITEM(it, 4));
            if (d == -1 && PyErr_Occurred())
                goto done;
            long long ts;
            if (as_int64(PyTuple_GET_ITEM(it, 0), &ts) < 0)
                goto done;
            if (d < 0 || d > 7) {
                PyErr_SetString(PyExc_ValueError, "fold: direction code out of range");
                goto done;
            }
            if (app != 1) {
                PyObject *e = PyDict_GetItemWithError(live, key);
                if (e == NULL && !PyErr_Occurred())
                    e = PyDict_GetItemWithError(older, key);
                if (e == NULL && PyErr_Occurred())
                    goto done;
                long seen;
                if (e != NULL) {
                    if (item_app(e, &seen) < 0)
                        goto done;
                    if (app > seen) {                   /* a later copy */
                        PyObject *f, *dir, *v;
                        if (PyTuple_Check(e) && PyTuple_GET_SIZE(e) >= 3) {
                            f = PyTuple_GET_ITEM(e, 1);
                            dir = PyTuple_GET_ITEM(e, 2);
                        }
                        else if (PyList_Check(e) && PyList_GET_SIZE(e) >= 3) {
                            f = PyList_GET_ITEM(e, 1);
                            dir = PyList_GET_ITEM(e, 2);
                        }
                        else {
                            PyErr_SetString(PyExc_TypeError, "fold: short remembered packet");
                            goto done;
                        }
                        Py_INCREF(f);               /* e may go with the store below */
                        Py_INCREF(dir);
                        v = remembered(app_obj, f, dir);
                        Py_DECREF(f);
                        Py_DECREF(dir);
                        if (v == NULL || PyDict_SetItem(live, key, v) < 0) {
                            Py_XDECREF(v);
                            goto done;
                        }
                        Py_DECREF(v);
                        continue;
                    }
                }
            }
            /* ts - gen > window, as Python's exact ints compare it (window >= 0) */
            if (ts > gen && (unsigned long long)ts - (unsigned long long)gen
                    > (unsigned long long)window) {
                PyObject *fresh = PyDict_New();
                if (fresh == NULL)
                    goto done;
                Py_SETREF(older, live);
                live = fresh;
                gen = ts;
            }
            PyObject *f = PyLong_FromSsize_t(frame + 1);
            PyObject *v = f ? remembered(app_obj, f, PyTuple_GET_ITEM(dirs, d)) : NULL;
            Py_XDECREF(f);
            if (v == NULL || PyDict_SetItem(live, key, v) < 0) {
                Py_XDECREF(v);
                goto done;
            }
            Py_DECREF(v);
        }
        frame++;
        if (PyList_Append(kept, it) < 0)
            goto done;
    }
    result = Py_BuildValue("(OnnOOL)", kept, i, frame, live, older, gen);
done:
    Py_XDECREF(kept);
    Py_DECREF(live);
    Py_DECREF(older);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS,
     "walk(body, p, last_group, last_number, last_app, pktmon_guid, ndis_guid, size_at_4"
     "[, extra[, max_items]])"
     " -> (items, p, last_group, last_number, last_app, pktmon_events, ndis_events)"},
    {"fold", fold, METH_VARARGS,
     "fold(items, i, frame, live, older, generation_start, window, dirs)"
     " -> (kept, i, frame, live, older, generation_start)"},
    {"merge", merge, METH_O,
     "merge(streams) -> iterator of lists: the streams' lists of events (tuples, int64"
     " timestamp first) merged by time exactly as etl_buffers.merge_streams merges them"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_etlwalk",
                                    "Compiled event stepping for etl_fast.", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__etlwalk(void)
{
    if (PyType_Ready(&MergerType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
