/* facts.tracker.Tracker fused with the classic-pcap record walk, compiled.
 *
 * track_pcap() walks a classic pcap file exactly like facts.capture.pcap / fastpcap.iter_pcap
 * (same chunking, so the same warnings), decodes inline what fastpcap's inline branch decodes
 * (plus IPv6 carrying TCP straight after the fixed header, as facts.decode does), hands every
 * other frame to the Python decoder, and runs the Tracker's per-packet state machine on C
 * structs, with the GIL released except around Python calls. Segments are copied by value
 * into the state that references them (payload cut to 64 bytes, as the Python tracker trims
 * it; a RST keeps its whole payload); Python objects (Conn, Half, RstRecord, SynInfo,
 * TcpSegment: one per packet still referenced) are built only at the end, so facts.rst reads
 * them as if the Python tracker had run. Every decision mirrors facts/tracker.py; the tests
 * compare both passes, state and facts, on every capture we have.
 *
 * setup(classes: dict)                      once, with the classes the objects are made of
 * track_pcap(fd, linktype, big_endian, unit, limit, chunk, decode, progress, size)
 *   -> (tracker, records_read, bytes_read, warning)
 *   warning: None, ("cut", have, need, frames, header) or ("corrupt", off, incl, rest, frames)
 * track_objects(packets[, tick]) -> tracker  the same tracker over decoded packet objects;
 *   tick() after every 65536 packets and after a last partial chunk
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/mman.h>
#ifndef Py_T_OBJECT_EX          /* Python 3.11: the names come from structmember.h */
#include <structmember.h>
#define Py_T_OBJECT_EX T_OBJECT_EX
#define Py_READONLY READONLY
#endif

#define KEEP 64
#define M32 0xFFFFFFFFLL
#define HALF32 0x80000000LL
#define MAX_FRAG 65536
#define BLOCK 1024
#define PROGRESS_EVERY 65536
enum { FIN = 1, SYN = 2, RST = 4, ACK = 0x10 };
enum { HS_NONE, HS_SYN, HS_SYNACK, HS_COMPLETE };

typedef struct {
    int64_t frame, payload_len;
    double ts;
    uint32_t seq, ack;
    int32_t ip_id;                     /* -1: None */
    uint16_t sport, dport, window;
    uint8_t ipv, alen, ttl, flags, reserved, fragmented, truncated, direction, plcap;
    uint8_t src[16], dst[16], payload[KEEP];
} Seg;

typedef struct { uint8_t order[256]; uint32_t count[256]; int n; } TtlOther;

typedef struct {
    int64_t pkts, byts, nrst, ttl_changes, nxt, first_rst_nxt;
    double last_rst_ts;
    TtlOther *other;
    int ttl0;                          /* -1: None */
    uint8_t has_last, has_ldata, has_nxt, has_rst_ts, has_first_rst_nxt, fin;
    Seg last, ldata;
} Half;

typedef struct {
    double start, last_ts, prev_ts, max_gap, max_gap_at, gap_before_max, syn_ts, synack_time;
    int64_t maxseg, pmtu;
    uint32_t syn_seq, synack_seq;
    int32_t syn_ip_id, nrsts, nwatch, capwatch;
    int32_t *watch;
    uint16_t port[2];
    uint8_t ipv, alen, inferred, slow, hs, closed, frag, icmp, has_gap_at, has_syn, has_synack,
        has_pmtu, nfin, fin_by[2];
    uint8_t addr[2][16];
    Half half[2];
} Conn;

typedef struct {
    Seg seg, sender_last, other_last, trigger;
    PyObject *payload;                 /* the RST's whole captured payload (decoded by Python) */
    uint8_t *raw;                      /* or a copy of it (decoded inline, GIL released) */
    Py_ssize_t rawlen;
    double idle_before, idle_trigger, idle_sender, egb, egt, data_after_s;
    int64_t packets_before, bytes_before[2], sender_nxt, other_nxt, other_last_ack,
        maxseg_before, first_rst_nxt;
    int32_t conn, index;
    uint8_t side, hs, syn_seen, synack_seen, synack_after, challenge_ack, inexact;
    uint8_t has_idle_before, has_idle_trigger, has_idle_sender, has_egb, has_egt,
        has_data_after, has_sender_nxt, has_other_nxt, has_ola, has_sender_last,
        has_other_last, has_trigger;
} Rec;

/* -- a 40-byte-key open-addressing map (4-tuples, fragment ids) -------------------------- */
typedef struct { uint64_t w[5]; } Key;
typedef struct { Key *keys; int32_t *vals; size_t cap, n; } Map;

static inline uint64_t khash(const Key *k)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 5; i++) {
        h ^= k->w[i];
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 29;
    }
    return h;
}

static int map_init(Map *m, size_t cap)
{
    m->keys = PyMem_RawMalloc(cap * sizeof(Key));
    m->vals = PyMem_RawMalloc(cap * sizeof(int32_t));
    if (!m->keys || !m->vals)
        return -1;
    memset(m->vals, 0xff, cap * sizeof(int32_t));
    m->cap = cap;
    m->n = 0;
    return 0;
}

static void map_free(Map *m)
{
    PyMem_RawFree(m->keys);
    PyMem_RawFree(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

static inline size_t map_find(const Map *m, const Key *k)
{
    size_t mask = m->cap - 1, i = khash(k) & mask;
    while (m->vals[i] >= 0 && memcmp(&m->keys[i], k, sizeof(Key)) != 0)
        i = (i + 1) & mask;
    return i;
}

static inline int32_t map_get(const Map *m, const Key *k)
{
    return m->vals[map_find(m, k)];
}

static int map_put(Map *m, const Key *k, int32_t v)
{
    size_t i = map_find(m, k);
    if (m->vals[i] >= 0) {
        m->vals[i] = v;
        return 0;
    }
    m->keys[i] = *k;
    m->vals[i] = v;
    if (++m->n * 2 > m->cap) {
        Map g;
        if (map_init(&g, m->cap * 2) < 0) {
            map_free(&g);
            return -1;
        }
        for (size_t j = 0; j < m->cap; j++)
            if (m->vals[j] >= 0) {
                size_t s = map_find(&g, &m->keys[j]);
                g.keys[s] = m->keys[j];
                g.vals[s] = m->vals[j];
            }
        g.n = m->n;
        map_free(m);
        *m = g;
    }
    return 1;
}

static inline void conn_key(Key *k, int alen, const uint8_t *a, uint16_t pa, const uint8_t *b,
                            uint16_t pb)
{
    uint8_t *p = (uint8_t *)k->w;
    memset(k, 0, sizeof(Key));
    p[0] = (uint8_t)alen;
    memcpy(p + 1, a, alen);
    memcpy(p + 17, b, alen);
    memcpy(p + 33, &pa, 2);
    memcpy(p + 35, &pb, 2);
}

static inline void frag_key(Key *k, int alen, const uint8_t *a, const uint8_t *b, int64_t id)
{
    uint8_t *p = (uint8_t *)k->w;
    uint32_t v = (uint32_t)id;
    memset(k, 0, sizeof(Key));
    p[0] = (uint8_t)alen;
    memcpy(p + 1, a, alen);
    memcpy(p + 17, b, alen);
    memcpy(p + 33, &v, 4);
    p[37] = id < 0;   /* ip_id None (IPv6 segments) */
}

/* -- tracker state ------------------------------------------------------------------------ */
typedef struct {
    Conn **cb;                         /* blocks of BLOCK, mapped apart so that freeing them */
    Rec **rb;                          /* while the Python objects are built lowers the peak */
    int64_t nconn, nrec, ncb, nrb, tcp, rst;
    Map table, frags;
    Key *flog;                         /* fragment keys in first-insertion order */
    double first_ts, last_ts;
    int has_ts;
} T;

#define CONN(t, i) (&(t)->cb[(i) / BLOCK][(i) % BLOCK])
#define REC(t, i) (&(t)->rb[(i) / BLOCK][(i) % BLOCK])

static int t_init(T *t)
{
    memset(t, 0, sizeof(T));
    t->flog = PyMem_RawMalloc(MAX_FRAG * sizeof(Key));
    if (!t->flog || map_init(&t->table, 1 << 12) < 0 || map_init(&t->frags, 1 << 6) < 0)
        return -1;
    return 0;
}

static void free_conn_block(T *t, int64_t k)
{
    Conn *blk = t->cb[k];
    if (!blk)
        return;
    int64_t n = t->nconn - k * BLOCK < BLOCK ? t->nconn - k * BLOCK : BLOCK;
    for (int64_t i = 0; i < n; i++) {
        PyMem_RawFree(blk[i].watch);
        PyMem_RawFree(blk[i].half[0].other);
        PyMem_RawFree(blk[i].half[1].other);
    }
    munmap(blk, BLOCK * sizeof(Conn));
    t->cb[k] = NULL;
}

static void free_rec_block(T *t, int64_t k)
{
    Rec *blk = t->rb[k];
    if (!blk)
        return;
    int64_t n = t->nrec - k * BLOCK < BLOCK ? t->nrec - k * BLOCK : BLOCK;
    for (int64_t i = 0; i < n; i++) {
        Py_XDECREF(blk[i].payload);
        PyMem_RawFree(blk[i].raw);
    }
    munmap(blk, BLOCK * sizeof(Rec));
    t->rb[k] = NULL;
}

static void t_free(T *t)
{
    for (int64_t k = 0; k < t->ncb; k++)
        free_conn_block(t, k);
    for (int64_t k = 0; k < t->nrb; k++)
        free_rec_block(t, k);
    PyMem_RawFree(t->cb);
    PyMem_RawFree(t->rb);
    PyMem_RawFree(t->flog);
    map_free(&t->table);
    map_free(&t->frags);
    memset(t, 0, sizeof(T));
}

/* Room for one more element in a blocked array of n elements (nb blocks so far; zeroed);
 * NULL when out of memory. */
static void *grow_blocks(void ***blocks, int64_t *nb, int64_t n, size_t size)
{
    if (n / BLOCK == *nb) {
        void **b = PyMem_RawRealloc(*blocks, (size_t)(*nb + 1) * sizeof(void *));
        if (!b)
            return NULL;
        *blocks = b;
        void *m = mmap(NULL, BLOCK * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        b[(*nb)++] = m;
    }
    return (char *)(*blocks)[n / BLOCK] + (size_t)(n % BLOCK) * size;
}

static inline int fwd(int64_t diff)
{
    int64_t d = diff & M32;
    return 0 < d && d < HALF32;
}

static int note_ttl(Half *h, int ttl)
{
    /* facts.tracker.Tracker._note_ttl, minus the change count (done by the caller) */
    if (h->ttl0 < 0)
        h->ttl0 = ttl;
    else if (ttl != h->ttl0) {
        if (!h->other) {
            h->other = PyMem_RawCalloc(1, sizeof(TtlOther));
            if (!h->other)
                return -1;
        }
        if (h->other->count[ttl]++ == 0)
            h->other->order[h->other->n++] = (uint8_t)ttl;
    }
    return 0;
}

static int note_frag(T *t, int64_t ci, Conn *c, const Seg *p)
{
    c->frag = 1;
    if (t->frags.n < MAX_FRAG) {
        Key k;
        frag_key(&k, p->alen, p->src, p->dst, p->ip_id);
        int r = map_put(&t->frags, &k, (int32_t)ci);
        if (r < 0)
            return -1;
        if (r == 1)
            t->flog[t->frags.n - 1] = k;
    }
    return 0;
}

static void patch_rsts(T *t, Conn *c, int d, const Seg *p, int flags)
{
    int32_t k = 0;
    for (int32_t i = 0; i < c->nwatch; i++) {
        Rec *r = REC(t, c->watch[i]);
        if (d == r->side) {
            if (flags & RST)
                ;
            else if (p->payload_len && !r->has_data_after) {
                r->data_after_s = p->ts - r->seg.ts;
                r->has_data_after = 1;
            } else if ((flags & (SYN | ACK)) == (SYN | ACK))
                r->synack_after = 1;
        } else if (r->inexact && !r->challenge_ack && p->ts - r->seg.ts <= 1.0
                   && (flags & (ACK | SYN | FIN | RST)) == ACK && !p->payload_len
                   && r->has_ola && (int64_t)p->ack == r->other_last_ack)
            r->challenge_ack = 1;
        if (!r->has_data_after || !r->synack_after)
            c->watch[k++] = c->watch[i];
    }
    c->nwatch = k;
}

static int64_t new_conn(T *t, const Seg *p, int flags)
{
    int from_client, inferred;
    if (flags & SYN) {
        from_client = !(flags & ACK);
        inferred = 0;
    } else {
        from_client = p->sport >= p->dport;
        inferred = 1;
    }
    int64_t ci = t->nconn;
    Conn *c = grow_blocks((void ***)&t->cb, &t->ncb, ci, sizeof(Conn));
    if (!c)
        return -1;
    t->nconn++;
    c->ipv = p->ipv;
    c->alen = p->alen;
    memcpy(c->addr[0], from_client ? p->src : p->dst, p->alen);
    memcpy(c->addr[1], from_client ? p->dst : p->src, p->alen);
    c->port[0] = from_client ? p->sport : p->dport;
    c->port[1] = from_client ? p->dport : p->sport;
    c->inferred = (uint8_t)inferred;
    c->start = c->last_ts = c->prev_ts = p->ts;
    c->slow = !inferred;
    c->half[0].ttl0 = c->half[1].ttl0 = -1;
    Key k;
    conn_key(&k, c->alen, c->addr[0], c->port[0], c->addr[1], c->port[1]);
    if (map_put(&t->table, &k, (int32_t)(ci * 2)) < 0)
        return -1;
    conn_key(&k, c->alen, c->addr[1], c->port[1], c->addr[0], c->port[0]);
    if (map_put(&t->table, &k, (int32_t)(ci * 2 + 1)) < 0)
        return -1;
    return ci * 2 + (from_client ? 0 : 1);
}

static int slow_path(T *t, int64_t ci, Conn *c, int d, const Seg *p, int flags)
{
    Half *h = &c->half[d];
    if (flags & (SYN | FIN)) {
        int64_t end = (int64_t)p->seq + p->payload_len + (flags & FIN) + ((flags & SYN) >> 1);
        if (!h->has_nxt || fwd(end - h->nxt)) {
            h->nxt = end & M32;
            h->has_nxt = 1;
        }
    }
    if (flags & SYN) {
        if (flags & ACK) {
            if (!c->has_synack) {
                c->has_synack = 1;
                c->synack_time = p->ts;
                c->synack_seq = p->seq;
            }
            if (c->hs < HS_SYNACK)
                c->hs = HS_SYNACK;
        } else {
            if (!c->has_syn) {
                c->has_syn = 1;
                c->syn_ts = p->ts;
                c->syn_seq = p->seq;
                c->syn_ip_id = p->ip_id;
            }
            if (c->hs < HS_SYN)
                c->hs = HS_SYN;
        }
    } else if (c->hs == HS_SYNACK && d == 0 && (flags & ACK))
        c->hs = HS_COMPLETE;
    if ((flags & FIN) && !h->fin) {
        h->fin = 1;
        c->fin_by[c->nfin++] = (uint8_t)d;
        if (c->half[0].fin && c->half[1].fin)
            c->closed = 1;
    }
    if (p->fragmented && note_frag(t, ci, c, p) < 0)
        return -1;
    if (c->nwatch)
        patch_rsts(t, c, d, p, flags);
    c->slow = c->nwatch > 0 || c->hs == HS_SYN || c->hs == HS_SYNACK;
    return 0;
}

static int on_rst(T *t, int64_t ci, Conn *c, int d, const Seg *p, const uint8_t *pl,
                  Py_ssize_t pllen, PyObject *plobj)
{
    Half *me = &c->half[d], *peer = &c->half[1 - d];
    t->rst++;
    if (!me->has_first_rst_nxt) {
        me->first_rst_nxt = me->has_nxt ? (me->nxt & M32) : (int64_t)p->seq;
        me->has_first_rst_nxt = 1;
    }
    Rec *r = grow_blocks((void ***)&t->rb, &t->nrb, t->nrec, sizeof(Rec));
    if (!r)
        return -1;
    t->nrec++;
    if (plobj) {
        Py_INCREF(plobj);
        r->payload = plobj;
    } else if (pllen) {
        if (!(r->raw = PyMem_RawMalloc(pllen)))
            return -1;
        memcpy(r->raw, pl, pllen);
        r->rawlen = pllen;
    }
    r->seg = *p;
    r->conn = (int32_t)ci;
    r->side = (uint8_t)d;
    r->index = c->nrsts + 1;
    int64_t before = c->half[0].pkts + c->half[1].pkts;
    r->packets_before = before;
    r->has_idle_before = before != 0;
    r->idle_before = p->ts - c->last_ts;
    r->has_idle_trigger = before >= 2;
    r->idle_trigger = c->last_ts - c->prev_ts;
    r->has_egb = before >= 3;
    r->egb = c->max_gap;
    r->has_egt = before >= 4;
    r->egt = (c->has_gap_at && c->max_gap_at == c->last_ts) ? c->gap_before_max : c->max_gap;
    if (me->has_rst_ts || me->has_last) {
        double m;
        if (me->has_rst_ts && me->has_last)
            m = me->last.ts > me->last_rst_ts ? me->last.ts : me->last_rst_ts;
        else
            m = me->has_rst_ts ? me->last_rst_ts : me->last.ts;
        r->has_idle_sender = 1;
        r->idle_sender = p->ts - m;
    }
    r->bytes_before[0] = c->half[0].byts;
    r->bytes_before[1] = c->half[1].byts;
    r->has_sender_nxt = me->has_nxt;
    r->sender_nxt = me->nxt & M32;
    r->has_other_nxt = peer->has_nxt;
    r->other_nxt = peer->nxt & M32;
    if ((r->has_sender_last = me->has_last))
        r->sender_last = me->last;
    if ((r->has_other_last = peer->has_last))
        r->other_last = peer->last;
    r->has_ola = peer->has_last && (peer->last.flags & ACK);
    r->other_last_ack = peer->last.ack;
    r->hs = c->hs;
    r->syn_seen = c->has_syn;
    r->synack_seen = c->has_synack;
    if ((r->has_trigger = peer->has_ldata))
        r->trigger = peer->ldata;
    r->maxseg_before = c->maxseg;
    r->first_rst_nxt = me->first_rst_nxt;
    r->inexact = r->has_sender_nxt && (int64_t)p->seq != r->sender_nxt;
    if (c->nwatch)
        patch_rsts(t, c, d, p, p->flags);
    c->nrsts++;
    if (c->nwatch == c->capwatch) {
        int32_t cap = c->capwatch ? c->capwatch * 2 : 2;
        int32_t *w = PyMem_RawRealloc(c->watch, (size_t)cap * sizeof(int32_t));
        if (!w)
            return -1;
        c->watch = w;
        c->capwatch = cap;
    }
    c->watch[c->nwatch++] = (int32_t)(t->nrec - 1);
    c->slow = 1;
    c->closed = 1;
    double ts = p->ts;
    if (ts - c->last_ts > c->max_gap) {
        c->gap_before_max = c->max_gap;
        c->max_gap = ts - c->last_ts;
        c->max_gap_at = ts;
        c->has_gap_at = 1;
    }
    c->prev_ts = c->last_ts;
    c->last_ts = ts;
    me->pkts++;
    me->nrst++;
    me->byts += p->payload_len;
    me->last_rst_ts = ts;
    me->has_rst_ts = 1;
    if (p->fragmented && note_frag(t, ci, c, p) < 0)
        return -1;
    return 0;
}

/* Tracker.feed for one segment. p's payload is filled here from pl (the captured payload);
 * plobj, when given, is the payload as a bytes object (decoded by Python). */
static int feed_seg(T *t, Seg *p, const uint8_t *pl, Py_ssize_t pllen, PyObject *plobj)
{
    int flags = p->flags;
    Key k;
    t->tcp++;
    conn_key(&k, p->alen, p->src, p->sport, p->dst, p->dport);
    int64_t hv = map_get(&t->table, &k);
    if (hv < 0 || ((flags & 0x12) == SYN && CONN(t, hv / 2)->closed)) {
        hv = new_conn(t, p, flags);
        if (hv < 0)
            return -1;
    }
    int64_t ci = hv / 2;
    int d = (int)(hv % 2);
    Conn *c = CONN(t, ci);
    Half *h = &c->half[d];
    p->plcap = (uint8_t)(pllen < KEEP ? pllen : KEEP);
    memcpy(p->payload, pl, p->plcap);
    if (flags & RST)
        return on_rst(t, ci, c, d, p, pl, pllen, plobj);
    double ts = p->ts, last_ts = c->last_ts;
    if (ts - last_ts > c->max_gap) {
        c->gap_before_max = c->max_gap;
        c->max_gap = ts - last_ts;
        c->max_gap_at = ts;
        c->has_gap_at = 1;
    }
    c->prev_ts = last_ts;
    c->last_ts = ts;
    h->pkts++;
    int ttl = p->ttl;
    if (ttl != h->ttl0 || h->last.ttl != ttl) {
        if (note_ttl(h, ttl) < 0)
            return -1;
        if (h->has_last && h->last.ttl != ttl)
            h->ttl_changes++;
    }
    int64_t plen = p->payload_len;
    h->last = *p;
    h->has_last = 1;
    if (plen) {
        h->byts += plen;
        h->ldata = *p;
        h->has_ldata = 1;
        if (plen > c->maxseg)
            c->maxseg = plen;
    }
    int64_t end = (int64_t)p->seq + plen;
    if (!h->has_nxt || (end != h->nxt && fwd(end - h->nxt))) {
        h->nxt = end;
        h->has_nxt = 1;
    }
    if ((flags & 3) || c->slow || p->fragmented)
        return slow_path(t, ci, c, d, p, flags);
    return 0;
}

/* -- Python classes and their slot descriptors --------------------------------------------- */
/* A class with __slots__: its member descriptors (for reading packets Python decoded) and
 * their offsets (for filling the objects built here without a call per slot). */
typedef struct {
    PyObject *cls, *d[32];
    Py_ssize_t off[32];
    const char **names;
    int n;
} Cls;

static const char *SEG_SLOTS[] = {"frame", "ts", "ipv", "src", "dst", "sport", "dport", "ttl",
    "ip_id", "seq", "ack", "flags", "reserved", "window", "payload_len", "payload",
    "fragmented", "truncated", "direction", NULL};
enum { S_FRAME, S_TS, S_IPV, S_SRC, S_DST, S_SPORT, S_DPORT, S_TTL, S_IPID, S_SEQ, S_ACK,
       S_FLAGS, S_RES, S_WIN, S_PLEN, S_PAYLOAD, S_FRAG, S_TRUNC, S_DIR };
static const char *HALF_SLOTS[] = {"conn", "side", "pkts", "byts", "nrst", "ttl0", "ttl_other",
    "ttl_changes", "last", "ldata", "nxt", "last_rst_ts", "first_rst_nxt", "wscale", "fin",
    NULL};
static const char *CONN_SLOTS[] = {"id", "ipv", "addr", "port", "inferred", "start", "last_ts",
    "prev_ts", "max_gap", "max_gap_at", "gap_before_max", "half", "slow", "hs", "syn",
    "synack_time", "synack_seq", "fin_by", "closed", "rsts", "watch", "maxseg", "frag", "icmp",
    "pmtu", NULL};
enum { C_RSTS = 19, C_WATCH = 20 };
static const char *REC_SLOTS[] = {"id", "seg", "conn", "side", "index", "idle_before",
    "idle_trigger", "idle_sender", "packets_before", "bytes_before", "sender_nxt", "other_nxt",
    "other_hiack", "sender_last", "other_last", "other_wscale", "sender_wscale", "hs",
    "syn_seen", "synack_seen", "trigger", "maxseg_before", "first_rst_nxt", "data_after_s",
    "synack_after", "challenge_ack", "other_last_ack", "inexact", "earlier_gap_before",
    "earlier_gap_trigger", NULL};
static const char *FRAG_SLOTS[] = {"ts", "src", "dst", "ip_id", "proto", NULL};
static const char *ICMP_SLOTS[] = {"ts", "orig_src", "orig_dst", "orig_sport", "orig_dport",
    "mtu", NULL};

static Cls SEGC, HALFC, CONNC, RECC, FRAGC, ICMPC;
static PyObject *SYNINFO, *TRACKER, *EMPTY, *S_IN, *S_OUT, *S_CLIENT, *S_SERVER;

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

static PyObject *setup(PyObject *self, PyObject *classes)
{
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
    Py_RETURN_NONE;
}

static inline PyObject *get(Cls *c, int i, PyObject *o)
{
    return Py_TYPE(c->d[i])->tp_descr_get(c->d[i], o, c->cls);
}

/* Steals v. */
static inline int put(Cls *c, PyObject *o, int i, PyObject *v)
{
    if (!v)
        return -1;
    /* what member_set does for a T_OBJECT_EX slot of an instance of c->cls */
    PyObject **slot = (PyObject **)((char *)o + c->off[i]);
    PyObject *old = *slot;
    *slot = v;
    Py_XDECREF(old);
    return 0;
}

static inline PyObject *none(void) { Py_INCREF(Py_None); return Py_None; }
static inline PyObject *optf(int has, double v) { return has ? PyFloat_FromDouble(v) : none(); }
static inline PyObject *opti(int has, int64_t v) { return has ? PyLong_FromLongLong(v) : none(); }
static inline PyObject *newobj(Cls *c)
{
    PyTypeObject *tp = (PyTypeObject *)c->cls;
    return tp->tp_new(tp, EMPTY, NULL);
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

/* Slot i of o, an instance of exactly c->cls (borrowed; NULL and AttributeError if unset). */
static inline PyObject *slot(const Cls *c, int i, PyObject *o)
{
    PyObject *v = *(PyObject **)((char *)o + c->off[i]);
    if (!v)
        PyErr_SetString(PyExc_AttributeError, c->names[i]);
    return v;
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

/* Tracker.feed for one decoded Python packet (any of the three classes). */
static int feed_obj(T *t, PyObject *o)
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
    if (!t->has_ts) {
        t->first_ts = ts;
        t->has_ts = 1;
    }
    t->last_ts = ts;
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

/* -- building the Python objects ------------------------------------------------------------ */
/* What the build shares: one bytes object per address (servers repeat), one TcpSegment per
 * frame (the Python tracker's references point at one object per packet too). */
typedef struct {
    Map addr_map, seg_map;
    PyObject **objs;   /* owned: addresses and segments */
    int64_t nobj, capobj;
} B;

static int b_init(B *b)
{
    memset(b, 0, sizeof(B));
    if (map_init(&b->addr_map, 1 << 10) < 0 || map_init(&b->seg_map, 1 << 12) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void b_free(B *b)
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

static PyObject *ttl_dict(B *b, const TtlOther *o)
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
        || put(&HALFC, o, 6, ttl_dict(b, h->other)) < 0
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

static PyObject *ident(char c, int64_t n)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%c%lld", c, (long long)n);
    return PyUnicode_FromStringAndSize(buf, len);
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

static PyObject *conn_obj(B *b, T *t, int64_t i, PyObject **addrs)
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
    if (put(&CONNC, o, 0, ident('c', i + 1)) < 0
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

static PyObject *rec_obj(B *b, Rec *r, int64_t i, PyObject *conn)
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
    if (put(&RECC, o, 0, ident('r', i + 1)) < 0 || put(&RECC, o, 1, seg) < 0
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

static int set_attr(PyObject *o, const char *name, PyObject *v)
{
    if (!v)
        return -1;
    int r = PyObject_SetAttrString(o, name, v);
    Py_DECREF(v);
    return r;
}

static int table_put(B *b, PyObject *table, PyObject *x, int px, PyObject *y, int py,
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

/* A facts.tracker.Tracker holding Python twins of the C state. */
static PyObject *build(T *t)
{
    PyObject *tracker = NULL, *conns = NULL, *rsts = NULL, *table = NULL, *frags = NULL;
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
            r = table_put(b, table, addrs[0], cc->port[0], addrs[1], cc->port[1],
                          PyTuple_GET_ITEM(halves, 0));
        if (!r)
            r = table_put(b, table, addrs[1], cc->port[1], addrs[0], cc->port[0],
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
    for (int64_t i = 0; i < t->nconn; i++)
        PyMem_RawFree(wl[i]);
    PyMem_RawFree(wl);
    PyMem_RawFree(wn);
    PyMem_RawFree(cobj);
    b_free(b);
    return tracker;
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
    return NULL;
}

/* -- the pcap walk ------------------------------------------------------------------------- */
/* read() until n bytes or the end of the file; -errno on failure. Runs without the GIL. */
static Py_ssize_t read_full(int fd, uint8_t *buf, Py_ssize_t n)
{
    Py_ssize_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, (size_t)(n - got));
        if (r < 0) {
            if (errno == EINTR)
                continue;   /* signals are checked with the progress calls */
            return -(Py_ssize_t)errno;
        }
        if (r == 0)
            break;
        got += r;
    }
    return got;
}

static inline uint32_t be16(const uint8_t *b) { return (uint32_t)b[0] << 8 | b[1]; }
static inline uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static inline uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

/* fastpcap's inline branch (IPv4) and decode's IPv6-then-TCP case, for one frame of n bytes
 * at f whose IP header starts at l3 and ethertype sits at et. 1: s is the segment and
 * [*pl, *pl + *pllen) its captured payload; 0: the frame needs the Python decoder. */
static int inline_decode(const uint8_t *f, Py_ssize_t n, int lt, Py_ssize_t l3, Py_ssize_t et,
                         Seg *s, const uint8_t **pl, Py_ssize_t *pllen)
{
    if (n < l3 + 40)
        return 0;
    uint32_t etype = be16(f + et);
    const uint8_t *ip = f + l3, *tcp;
    Py_ssize_t start, stop, end;
    if (etype == 0x0800) {
        uint32_t totlen = be16(ip + 2), frag = be16(ip + 6);
        if (!(ip[0] == 0x45 && ip[9] == 6 && !(frag & 0x3FFF) && totlen >= 40 && ip[32] >= 0x50))
            return 0;
        tcp = ip + 20;
        s->ipv = 4;
        s->alen = 4;
        s->ttl = ip[8];
        s->ip_id = (int32_t)be16(ip + 4);
        memcpy(s->src, ip + 12, 4);
        memcpy(s->dst, ip + 16, 4);
        int64_t doff = (tcp[12] >> 4) << 2, plen = (int64_t)totlen - 20 - doff;
        start = l3 + 20 + doff;
        end = l3 + totlen;
        s->payload_len = plen > 0 ? plen : 0;
        if (end <= n) {
            s->truncated = 0;
            stop = plen > 0 ? end : start;
        } else {
            s->truncated = 1;
            stop = n > start ? n : start;
        }
    } else if (etype == 0x86DD) {
        /* decode._ipv6 with TCP as the next header, then decode._tcp */
        uint32_t plen6 = be16(ip + 4);
        if (ip[0] >> 4 != 6 || ip[6] != 6 || n < l3 + 56)
            return 0;
        end = plen6 ? l3 + 40 + plen6 : n;
        tcp = ip + 40;
        Py_ssize_t l4 = l3 + 40;
        if (l4 + 16 > end || tcp[12] >> 4 < 5)
            return 0;
        s->ipv = 6;
        s->alen = 16;
        s->ttl = ip[7];
        s->ip_id = -1;
        memcpy(s->src, ip + 8, 16);
        memcpy(s->dst, ip + 24, 16);
        start = l4 + ((tcp[12] >> 4) << 2);
        s->payload_len = end - start > 0 ? end - start : 0;
        stop = end < n ? end : n;
        if (stop < start)
            stop = start;
        s->truncated = n < end;
    } else
        return 0;
    s->sport = (uint16_t)be16(tcp);
    s->dport = (uint16_t)be16(tcp + 2);
    s->seq = be32(tcp + 4);
    s->ack = be32(tcp + 8);
    s->reserved = tcp[12] & 0x0F;
    s->flags = tcp[13];
    s->window = (uint16_t)be16(tcp + 14);
    s->fragmented = 0;
    if (lt == 113) {
        uint32_t pt = be16(f);
        s->direction = pt == 0 ? 1 : pt == 4 ? 2 : 0;
    } else if (lt == 276)
        s->direction = f[10] == 0 ? 1 : f[10] == 4 ? 2 : 0;
    else
        s->direction = 0;
    *pl = f + start;
    *pllen = stop - start;
    return 1;
}

/* pcap.py's "buf = buf[pos:] + f.read(need)", same sizes, so the same warnings.
 * 0, or -errno. Runs without the GIL. */
static int refill(int fd, uint8_t **buf, Py_ssize_t *cap, Py_ssize_t *blen, Py_ssize_t *pos,
                  long long *base, long long *fpos, Py_ssize_t need)
{
    Py_ssize_t tail = *blen - *pos;
    if (tail + need > *cap) {
        uint8_t *nb = PyMem_RawMalloc(tail + need);
        if (!nb)
            return -ENOMEM;
        memcpy(nb, *buf + *pos, tail);
        PyMem_RawFree(*buf);
        *buf = nb;
        *cap = tail + need;
    } else
        memmove(*buf, *buf + *pos, tail);
    Py_ssize_t got = read_full(fd, *buf + tail, need);
    if (got < 0)
        return (int)got;
    *fpos += got;
    *base += *pos;
    *pos = 0;
    *blen = tail + got;
    return 0;
}

static PyObject *progress_call(PyObject *progress, long long done, long long size)
{
    return PyObject_CallFunction(progress, "LL", done < size - 1 ? done : size - 1, size);
}

/* The GIL is released while frames decode inline and while the file is read; taken back for
 * the Python decoder, progress calls and anything that makes Python objects. */
#define GIL_OFF() do { if (!save) save = PyEval_SaveThread(); } while (0)
#define GIL_ON() do { if (save) { PyEval_RestoreThread(save); save = NULL; } } while (0)

static PyObject *track_pcap(PyObject *self, PyObject *args)
{
    int fd, lt, big, err = 0;
    double unit;
    unsigned long long limit;
    Py_ssize_t chunk;
    long long size;
    PyObject *decode, *progress;
    if (!PyArg_ParseTuple(args, "iiidKnOOL", &fd, &lt, &big, &unit, &limit, &chunk, &decode,
                          &progress, &size))
        return NULL;
    if (!SEGC.cls)
        return PyErr_Format(PyExc_RuntimeError, "_ctrack.setup() was not called");
    Py_ssize_t l3, et;
    if (lt == 1) { l3 = 14; et = 12; }
    else if (lt == 113) { l3 = 16; et = 14; }
    else if (lt == 276) { l3 = 20; et = 0; }
    else
        return PyErr_Format(PyExc_ValueError, "link type %d has no inline layout", lt);
    if (chunk < 16)
        return PyErr_Format(PyExc_ValueError, "chunk too small");
    T t;
    PyThreadState *save = NULL;
    uint8_t *buf = NULL;
    Py_ssize_t cap = chunk, blen = 0, pos = 0;
    long long base = 24, fpos = 24;
    int64_t frame = 0, npk = 0;
    PyObject *warn = NULL, *tracker = NULL, *lt_obj = PyLong_FromLong(lt);
    if (!lt_obj)
        return NULL;
    if (t_init(&t) < 0 || !(buf = PyMem_RawMalloc(cap)))
        goto done;   /* no memory */
    GIL_OFF();
    if (lseek(fd, 24, SEEK_SET) < 0) {
        err = errno;
        goto done;
    }
    if ((blen = read_full(fd, buf, chunk)) < 0) {
        err = (int)-blen;
        goto done;
    }
    fpos += blen;
    for (;;) {
        if (pos + 16 > blen) {
            if ((err = -refill(fd, &buf, &cap, &blen, &pos, &base, &fpos, chunk)))
                goto done;
            if (blen < 16) {
                GIL_ON();
                if (blen)
                    warn = Py_BuildValue("(snnLO)", "cut", blen, (Py_ssize_t)16,
                                         (long long)frame, Py_True);
                break;
            }
        }
        const uint8_t *h = buf + pos;
        uint32_t sec = big ? be32(h) : le32(h), frac = big ? be32(h + 4) : le32(h + 4);
        uint32_t incl = big ? be32(h + 8) : le32(h + 8), orig = big ? be32(h + 12) : le32(h + 12);
        if (incl > limit) {
            struct stat st;
            long long rest = fstat(fd, &st) == 0 ? (long long)st.st_size - fpos : 0;
            GIL_ON();
            warn = Py_BuildValue("(sLkLL)", "corrupt", base + pos, (unsigned long)incl,
                                 (long long)(blen - pos) + rest, (long long)frame);
            break;
        }
        Py_ssize_t p = pos + 16, end = p + incl;
        if (end > blen) {
            Py_ssize_t need = 16 + (Py_ssize_t)incl;
            GIL_OFF();
            if ((err = -refill(fd, &buf, &cap, &blen, &pos, &base, &fpos,
                               need > chunk ? need : chunk)))
                goto done;
            p = 16;
            end = need;
            if (end > blen) {
                GIL_ON();
                warn = Py_BuildValue("(snnLO)", "cut", blen, need, (long long)frame, Py_False);
                break;
            }
        }
        frame++;
        pos = end;
        double ts = (double)sec + (double)frac * unit;
        Seg s;
        const uint8_t *pl;
        Py_ssize_t pllen;
        if (inline_decode(buf + p, incl, lt, l3, et, &s, &pl, &pllen)) {
            GIL_OFF();
            s.frame = frame;
            s.ts = ts;
            if (!t.has_ts) {
                t.first_ts = ts;
                t.has_ts = 1;
            }
            t.last_ts = ts;
            if (feed_seg(&t, &s, pl, pllen, NULL) < 0)
                goto done;   /* no memory */
        } else {
            GIL_ON();
            PyObject *data = PyBytes_FromStringAndSize((const char *)buf + p, incl);
            PyObject *o = data ? PyObject_CallFunction(decode, "OOLdk", lt_obj, data,
                                                       (long long)frame, ts,
                                                       (unsigned long)orig) : NULL;
            Py_XDECREF(data);
            int r = !o ? -1 : o == Py_None ? 0 : feed_obj(&t, o) < 0 ? -1 : 1;
            Py_XDECREF(o);
            if (r < 0)
                goto done;
            if (r == 0)
                continue;
        }
        if (++npk % PROGRESS_EVERY == 0) {
            GIL_ON();
            if (PyErr_CheckSignals() < 0)
                goto done;
            if (progress != Py_None) {
                PyObject *r = progress_call(progress, fpos, size);
                if (!r)
                    goto done;
                Py_DECREF(r);
            }
        }
    }
    GIL_ON();
    if (!warn && PyErr_Occurred())
        goto done;
    if (progress != Py_None) {
        PyObject *r = npk % PROGRESS_EVERY ? progress_call(progress, fpos, size) : none();
        if (!r)
            goto done;
        Py_DECREF(r);
        if (!(r = PyObject_CallFunction(progress, "LL", size, size)))
            goto done;
        Py_DECREF(r);
    }
    PyMem_RawFree(buf);
    buf = NULL;
    tracker = build(&t);
    if (!tracker)
        goto done;
    if (!warn)
        warn = none();
    PyObject *res = Py_BuildValue("(NLLN)", tracker, (long long)frame, fpos, warn);
    tracker = warn = NULL;
    t_free(&t);
    Py_DECREF(lt_obj);
    return res;
done:
    GIL_ON();
    if (err) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
    } else if (!PyErr_Occurred())
        PyErr_NoMemory();
    PyMem_RawFree(buf);
    t_free(&t);
    Py_XDECREF(warn);
    Py_XDECREF(tracker);
    Py_DECREF(lt_obj);
    return NULL;
}

static PyObject *track_objects(PyObject *self, PyObject *args)
{
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
    PyObject *tracker = PyErr_Occurred() ? NULL : build(&t);
    t_free(&t);
    return tracker;
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_O, "setup(classes): the Python classes the tracker builds"},
    {"track_pcap", track_pcap, METH_VARARGS,
     "track_pcap(fd, linktype, big_endian, unit, limit, chunk, decode, progress, size)"},
    {"track_objects", track_objects, METH_VARARGS,
     "track_objects(packets[, tick]) -> Tracker; tick() after every 65536 packets and at the end"},
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
    if (!EMPTY || !S_IN || !S_OUT || !S_CLIENT || !S_SERVER)
        return NULL;
    return PyModule_Create(&module);
}
