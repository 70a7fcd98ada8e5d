/* The pcapng block walk of facts.capture.pcapng.PcapngCapture.walk, compiled, for files
 * without damage: same chunked reads (so the same bytes_read at each progress call), same
 * sections, interfaces (link type, snaplen, if_tsresol, if_tsoffset), Enhanced / obsolete /
 * Simple Packet Blocks, epb_flags directions and counted blocks; frames decode as in
 * track_frames (inline for 1/113/276, else decode()).
 *
 * track_pcapng(fd, chunk, decode, tick) -> (state, records_read, bytes_read, link_types)
 *   or (None, ticks) at the first thing walk() would warn about (a bad or cut block, a packet
 *   block it skips) or a clock this walk cannot reproduce exactly: the caller then reads
 *   the file through walk(), after the ``ticks`` progress calls already made (the same
 *   ones, since the reads are the same).
 *   tick(bytes_read) after every 65536 packets and after a last partial chunk.
 */
#include "_ctrack.h"
#include <math.h>

#define SHB_MAGIC 0x0A0D0D0AU
#define MAX_BLOCK (16 << 20)
#define MAX_IFACES 65536

typedef struct { int64_t offset; uint64_t div; uint32_t snaplen; int lt; } Iface;

static inline uint32_t rd32(const uint8_t *b, int big) { return big ? be32(b) : le32(b); }
static inline uint32_t rd16(const uint8_t *b, int big)
{
    return big ? be16(b) : (uint32_t)b[1] << 8 | b[0];
}

/* Python's int / int for t < 2**64, 0 < d < 2**63: the double nearest the exact quotient
 * (ties to even), as CPython's long_true_divide computes it. */
static double div_exact(uint64_t t, uint64_t d)
{
    const uint64_t small = 1ULL << 53;
    if (t < small && d < small)
        return (double)t / (double)d;
    if (!t)
        return 0.0;
    double q = (double)((long double)t / (long double)d);
    int tbits = 64 - __builtin_clzll(t);
    for (int k = 0; k < 8; k++) {
        int e;
        double m = frexp(q, &e);            /* q = m * 2**e, 0.5 <= m < 1 */
        uint64_t M = (uint64_t)ldexp(m, 53);
        int s = 1 - (e - 53);               /* q = M * 2**(1 - s) exactly */
        /* t/d against the midpoints between q and its neighbours, both sides times
         * d * 2**s: above (2M + 1) * d; below (2M - 1) * d, or (4M - 1) * d / 2 when q is a
         * power of two (the gap below it is half the gap above); ties to the even mantissa.
         * Shifts stay inside 128 bits: d < 2**60, M < 2**53. */
        if (s > 0 ? tbits + s + 1 > 127 : -s > 12)
            return NAN;                     /* far outside what a timestamp needs */
        unsigned __int128 x = (unsigned __int128)t << (s > 0 ? s + 1 : 1),
                          r = (unsigned __int128)d << (s > 0 ? 0 : -s);
        /* x = t * 2**(s + 1) (or t * 2), r = d (or d * 2**-s): compare x with (4M +- 2) * r
         * and (4M - 1) * r */
        unsigned __int128 up = (unsigned __int128)(4 * M + 2) * r;
        if (x > up || (x == up && (M & 1))) {
            q = nextafter(q, INFINITY);
            continue;
        }
        unsigned __int128 lo = (unsigned __int128)(M == 1ULL << 52 ? 4 * M - 1 : 4 * M - 2) * r;
        if (x < lo || (x == lo && (M & 1))) {
            q = nextafter(q, 0.0);
            continue;
        }
        return q;
    }
    return NAN;
}

/* One frame: 1 fed, 0 no packet, -1 error. */
static int feed_frame(T *t, PyObject *decode, int64_t frame, double ts, int lt,
                      const uint8_t *f, Py_ssize_t n, uint32_t orig, int dir)
{
    Py_ssize_t l3, et;
    Seg s;
    const uint8_t *pl;
    Py_ssize_t pllen;
    if (inline_layout((int)lt, &l3, &et) && inline_decode(f, n, lt, l3, et, &s, &pl, &pllen)) {
        if (feed_inline(t, &s, frame, ts, dir, pl, pllen) < 0) {
            PyErr_NoMemory();
            return -1;
        }
        return 1;
    }
    PyObject *o = PyObject_CallFunction(decode, "iy#LdkO", lt, (const char *)f, n,
                                        (long long)frame, ts, (unsigned long)orig,
                                        dir == 1 ? S_IN : dir == 2 ? S_OUT : Py_None);
    return feed_decoded(t, o);
}

/* An interface description block at b (blen bytes): 0, or 1 when its clock is one this walk
 * does not reproduce exactly (the Python walk reads the file then). */
static int parse_idb(const uint8_t *b, uint32_t blen, int big, Iface *i)
{
    i->lt = (int)rd16(b + 8, big);
    i->snaplen = rd32(b + 12, big);
    i->div = 1000000;
    i->offset = 0;
    const uint8_t *p = b + 16, *end = b + blen - 4;
    while (p + 4 <= end) {               /* facts.capture.pcapng._options */
        uint32_t code = rd16(p, big), len = rd16(p + 2, big);
        if (code == 0 || p + 4 + len > end)
            break;
        if (code == 9 && len) {
            uint8_t v = p[4];
            if (v & 0x80) {
                if ((v & 0x7F) > 62)
                    return 1;
                i->div = 1ULL << (v & 0x7F);
            } else {
                if (v > 18)
                    return 1;
                i->div = 1;
                for (int k = 0; k < v; k++)
                    i->div *= 10;
            }
        } else if (code == 14 && len >= 8) {
            uint64_t lo = rd32(p + 4, big), hi = rd32(p + 8, big);
            i->offset = (int64_t)(big ? lo << 32 | hi : hi << 32 | lo);
        }
        p += 4 + ((len + 3) & ~3U);
    }
    if (i->offset > (1LL << 53) || i->offset < -(1LL << 53))
        return 1;
    return 0;
}

PyObject *track_pcapng(PyObject *self, PyObject *args)
{
    (void)self;
    int fd, err = 0, unclean = 0, big = 0;
    Py_ssize_t chunk;
    PyObject *decode, *tick;
    if (!PyArg_ParseTuple(args, "inOO", &fd, &chunk, &decode, &tick))
        return NULL;
    if (!SEGC.cls)
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not called");
    if (chunk < 16)
        return PyErr_Format(PyExc_ValueError, "chunk too small");
    T t;
    uint8_t *buf = NULL;
    Iface *ifaces = NULL;
    Py_ssize_t cap = chunk, blen = 0, pos = 0, nif = 0, capif = 0;
    long long base = 0, fpos = 0;
    int64_t frame = 0, npk = 0, ticks = 0;
    double last_ts = 0.0;
    PyObject *lts = PyList_New(0), *res = NULL;
    if (!lts)
        return NULL;
    if (t_init(&t) < 0 || !(buf = PyMem_RawMalloc(cap)))
        goto fail;
    if (lseek(fd, 0, SEEK_SET) < 0 || (blen = read_full(fd, buf, chunk)) < 0) {
        err = blen < 0 ? (int)-blen : errno;
        goto fail;
    }
    fpos = blen;
    for (;;) {
        if (pos + 12 > blen) {
            if ((err = -refill(fd, &buf, &cap, &blen, &pos, &base, &fpos, chunk)))
                goto fail;
            if (blen < 12) {
                unclean = blen != 0;        /* walk(): "file cut short" */
                break;
            }
        }
        const uint8_t *b = buf + pos;
        if (le32(b) == SHB_MAGIC) {
            uint32_t bom = le32(b + 8);
            if (bom == 0x1A2B3C4D)
                big = 0;
            else if (bom == 0x4D3C2B1A)
                big = 1;
            else {
                unclean = 1;
                break;
            }
            nif = 0;
        }
        uint32_t btype = rd32(b, big), bl = rd32(b + 4, big);
        if (bl < 12 || bl % 4 || bl > MAX_BLOCK) {
            unclean = 1;
            break;
        }
        if (pos + (Py_ssize_t)bl > blen) {
            if ((err = -refill(fd, &buf, &cap, &blen, &pos, &base, &fpos,
                               (Py_ssize_t)bl > chunk ? (Py_ssize_t)bl : chunk)))
                goto fail;
            if ((Py_ssize_t)bl > blen) {
                unclean = 1;
                break;
            }
            b = buf + pos;
        }
        if (rd32(b + bl - 4, big) != bl) {
            unclean = 1;
            break;
        }
        pos += bl;
        int r = 0;
        if (btype == 6 || btype == 2) {      /* EPB, obsolete PB */
            if (bl < 32)
                continue;
            uint32_t ifid = btype == 6 ? rd32(b + 8, big) : rd16(b + 8, big);
            uint32_t tsh = rd32(b + 12, big), tsl = rd32(b + 16, big),
                     caplen = rd32(b + 20, big), orig = rd32(b + 24, big);
            if (caplen > bl - 32 || ifid >= (uint64_t)nif) {
                unclean = 1;                /* walk() skips it with a warning */
                break;
            }
            Iface *i = &ifaces[ifid];
            double q = div_exact((uint64_t)tsh << 32 | tsl, i->div);
            if (isnan(q)) {
                unclean = 1;
                break;
            }
            last_ts = i->offset ? q + (double)i->offset : q;
            int dir = 0;
            const uint8_t *o = b + 28 + ((caplen + 3) & ~3U), *end = b + bl - 4;
            while (o + 4 <= end) {          /* options: the last epb_flags wins */
                uint32_t code = rd16(o, big), len = rd16(o + 2, big);
                if (code == 0 || o + 4 + len > end)
                    break;
                if (code == 2 && len >= 4) {
                    uint32_t d = rd32(o + 4, big) & 3;
                    dir = d == 1 ? 1 : d == 2 ? 2 : 0;
                }
                o += 4 + ((len + 3) & ~3U);
            }
            frame++;
            r = feed_frame(&t, decode, frame, last_ts, i->lt, b + 28, caplen, orig, dir);
        } else if (btype == 3) {             /* SPB */
            if (bl < 16 || !nif)
                continue;
            uint32_t orig = rd32(b + 8, big), caplen = orig < bl - 16 ? orig : bl - 16;
            if (ifaces[0].snaplen && ifaces[0].snaplen < caplen)
                caplen = ifaces[0].snaplen;
            frame++;
            r = feed_frame(&t, decode, frame, last_ts, ifaces[0].lt, b + 12, caplen, orig, 0);
        } else if (btype == 0xBAD || btype == 0x40000BAD || btype == 9) {
            frame++;
        } else if (btype == 1 && bl >= 20) {  /* IDB */
            if (nif == capif) {
                Py_ssize_t nc = capif ? capif * 2 : 8;
                Iface *ni = nif < MAX_IFACES ? PyMem_RawRealloc(ifaces, nc * sizeof(Iface))
                                              : NULL;
                if (!ni) {
                    unclean = nif >= MAX_IFACES;
                    if (!unclean)
                        goto fail;
                    break;
                }
                ifaces = ni;
                capif = nc;
            }
            if (parse_idb(b, bl, big, &ifaces[nif])) {
                unclean = 1;
                break;
            }
            PyObject *lt = PyLong_FromLong(ifaces[nif].lt);
            if (!lt || PyList_Append(lts, lt) < 0) {
                Py_XDECREF(lt);
                goto fail;
            }
            Py_DECREF(lt);
            nif++;
        }
        if (r < 0)
            goto fail;
        if (r && ++npk % PROGRESS_EVERY == 0) {
            if (PyErr_CheckSignals() < 0)
                goto fail;
            if (tick != Py_None) {
                PyObject *x = PyObject_CallFunction(tick, "L", fpos);
                if (!x)
                    goto fail;
                Py_DECREF(x);
                ticks++;
            }
        }
    }
    PyMem_RawFree(buf);
    PyMem_RawFree(ifaces);
    buf = NULL;
    ifaces = NULL;
    if (unclean) {
        t_free(&t);
        Py_DECREF(lts);
        return Py_BuildValue("(OL)", Py_None, (long long)ticks);
    }
    if (npk % PROGRESS_EVERY && tick != Py_None) {
        PyObject *x = PyObject_CallFunction(tick, "L", fpos);
        if (!x)
            goto fail;
        Py_DECREF(x);
    }
    PyObject *state = new_state(&t);
    if (!state)
        goto fail;
    res = Py_BuildValue("(NLLN)", state, (long long)frame, fpos, lts);
    t_free(&t);
    return res;
fail:
    raise_read_error(err);
    PyMem_RawFree(buf);
    PyMem_RawFree(ifaces);
    t_free(&t);
    Py_DECREF(lts);
    return NULL;
}
