/* walk(): the event walk of one decompressed buffer body (see _etlwalk.h for the module).
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
 * merged, pktmon 3 copies: 1.27x -> 1.15x pcap). With extra 3 as with 2, and those bytes
 * are also the item's body (start 0, end their length): the items hold no reference to
 * the buffer, which the reader then reads the next one into. max_items > 0:
 * the walk also stops once it returns that many items, p then the next record (the reader
 * walks a buffer in pieces, each just before it uses them). p is -1 at the end of the
 * body, else the offset of the event the general walk must judge. last_group is None
 * until a pktmon packet was passed.
 */
#include "_etlwalk.h"

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
    if (extra == 2 || extra == 3)
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

/* The item of the frame b[start:end] (key: a new reference, stolen, or NULL for None),
 * its extra and body as walk describes them. */
static int add_frame(PyObject *items, int extra, const unsigned char *b, PyObject *tag,
                     long long ts, PyObject *key, unsigned app, unsigned long long code,
                     unsigned dir, unsigned orig, Py_ssize_t start, Py_ssize_t end,
                     int ethernet)
{
    PyObject *more = extra_of(extra, b, start, end, ethernet);
    if (more == NULL) {
        Py_XDECREF(key);
        return -1;
    }
    if (extra == 3)         /* the frame's bytes stand for the body (append_item: borrowed) */
        return append_item(items, ts, key, app, code, dir, orig, 0, end - start, more, more);
    return append_item(items, ts, key, app, code, dir, orig, start, end, tag, more);
}

PyObject *walk(PyObject *self, PyObject *args)
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
    /* The merged (multi-stream) reader mixes items of many buffers: each carries its body
     * (with extra 3 its frame's bytes as its body). */
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
            PyObject *key = make_key(group, number);
            if (key == NULL || add_frame(items, extra, b, tag, (long long)rd64(e + 16), key, app,
                                         ptype == 1 ? 1 : 101, rd16(e + 92) & 7, rd16(e + 110),
                                         start, end, ptype == 1) < 0)
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
            if (add_frame(items, extra, b, tag, (long long)rd64(e + 16), NULL, 0,
                          kw & 0x10200u, (unsigned)((kw >> 32) & 3), 0, start, end,
                          !(kw & 0x10200u)) < 0)
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
