/* facts._ctrack: the internal interface between its source files.
 *
 * _ctrack_table.c    open-addressing map, tracker state (T) and its blocked arrays
 * _ctrack_tracker.c  facts.tracker.Tracker's per-packet state machine on C structs
 * _ctrack_pyin.c     the Python classes (setup) and reading decoded Python packets
 * _ctrack_decode.c   inline Ethernet/SLL/SLL2 + IPv4/IPv6 + TCP decode of one frame
 * _ctrack_pcap.c     the classic-pcap record walk (track_pcap)
 * _ctrack_frames.c   any reader's raw frames, decoded inline like pcap's (track_frames)
 * _ctrack_pcapng.c   the pcapng block walk of an undamaged file (track_pcapng)
 * _ctrack_pyout.c    Python twins of the state (Conn, Half, RstRecord, SynInfo, TcpSegment)
 * _ctrack_pytracker.c  the facts.tracker.Tracker holding them
 * _ctrack_models.c   the Connection / Endpoint / RstEvent models, made like fastmodel.construct
 * _ctrack_baseline.c host TTL baselines, RSTs by connection, address strings, TTL histograms
 * _ctrack_facts.c    the Connection / RstEvent facts of facts.rst, straight from the state
 * _ctrack_cross.c    facts.cross.analyse's patterns across connections and dual.capture_role's
 *                    votes, over the facts
 * _ctrack_module.c   the State object, track_objects and the module
 *
 * Every decision mirrors facts/tracker.py and facts/rst.py; the tests compare both passes.
 */
#ifndef RSTSLEUTH_CTRACK_H
#define RSTSLEUTH_CTRACK_H
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
#define CHALLENGE_WINDOW_S 1.0
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

static inline int fwd(int64_t diff)
{
    int64_t d = diff & M32;
    return 0 < d && d < HALF32;
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

/* -- Python classes and their slot descriptors --------------------------------------------- */
/* A class with __slots__: its member descriptors (for reading packets Python decoded) and
 * their offsets (for filling the objects built here without a call per slot). */
typedef struct {
    PyObject *cls, *d[32];
    Py_ssize_t off[32];
    const char **names;
    int n;
} Cls;
enum { S_FRAME, S_TS, S_IPV, S_SRC, S_DST, S_SPORT, S_DPORT, S_TTL, S_IPID, S_SEQ, S_ACK,
       S_FLAGS, S_RES, S_WIN, S_PLEN, S_PAYLOAD, S_FRAG, S_TRUNC, S_DIR };
enum { C_RSTS = 19, C_WATCH = 20 };

extern Cls SEGC, HALFC, CONNC, RECC, FRAGC, ICMPC;
extern PyObject *SYNINFO, *TRACKER, *EMPTY, *S_IN, *S_OUT, *S_CLIENT, *S_SERVER;

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

/* Slot i of o, an instance of exactly c->cls (borrowed; NULL and AttributeError if unset). */
static inline PyObject *slot(const Cls *c, int i, PyObject *o)
{
    PyObject *v = *(PyObject **)((char *)o + c->off[i]);
    if (!v)
        PyErr_SetString(PyExc_AttributeError, c->names[i]);
    return v;
}

/* -- the facts being built (facts.rst.iter_built's state) --------------------------------- */
typedef struct {
    PyObject *capture;                 /* the Connection/RstEvent "capture" string */
    int32_t *first, *order;            /* RSTs by connection: order[first[c] .. first[c + 1]) */
    int32_t *left;                     /* per RST block: records not built yet */
    int16_t *host_ttl;                 /* per claimed sender's address: baseline, -1 none */
    Map hosts;                         /* claimed senders' addresses -> host_ttl index */
    Map names;                         /* addresses -> index in name_objs */
    PyObject **name_objs;              /* their strings (servers repeat) */
    int64_t nnames, capnames, next;
    int started;
} F;

/* -- building the facts ------------------------------------------------------------------ */
enum { M_CONN, M_EP, M_RST, NMODELS };   /* the models, and their numbers of fields */
enum { N_CONN = 31, N_EP = 2, N_RST = 76 };
/* Interned strings the facts take their values from (STR[K_...]) */
enum { K_CONNECTION, K_RST, K_FLAG_RST, K_FLAG_RSTACK, K_HS_NONE, K_HS_SYN, K_HS_SYNACK,
       K_HS_COMPLETE, K_OPEN, K_FIN, K_FIN_RST, K_EXACT, K_IN_WINDOW, K_OUTSIDE, K_UNKNOWN,
       K_BEHIND, K_AHEAD, K_NONE, K_HOST, NSTR };
extern PyObject *STR[NSTR];

static inline PyObject *py_str(int k) { Py_INCREF(STR[k]); return STR[k]; }
static inline PyObject *py_int(int64_t v) { return PyLong_FromLongLong(v); }
static inline PyObject *py_bool(int v) { return PyBool_FromLong(v); }
static inline PyObject *py_float(double v) { return PyFloat_FromDouble(v); }
static inline PyObject *optb(int has, int v) { return has ? PyBool_FromLong(v) : none(); }
static inline PyObject *ref(PyObject *o) { Py_INCREF(o); return o; }

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

/* A tracker's state after the pass, as a Python object: Tracker objects or facts from it. */
typedef struct {
    PyObject_HEAD
    T t;
    F f;
    int done;                          /* the state is gone (tracker() built, or facts ran) */
} State;

extern PyTypeObject StateType;

/* _ctrack_table.c */
int map_init(Map *m, size_t cap);
void map_free(Map *m);
int map_put(Map *m, const Key *k, int32_t v);
int t_init(T *t);
void t_free(T *t);
void free_conn_block(T *t, int64_t k);
void free_rec_block(T *t, int64_t k);
void *grow_blocks(void ***blocks, int64_t *nb, int64_t n, size_t size);
/* _ctrack_tracker.c */
int feed_seg(T *t, Seg *p, const uint8_t *pl, Py_ssize_t pllen, PyObject *plobj);
void note_ts(T *t, double ts);
int feed_inline(T *t, Seg *s, int64_t frame, double ts, int dir, const uint8_t *pl,
                Py_ssize_t pllen);
/* _ctrack_pyin.c */
PyObject *ct_setup(PyObject *self, PyObject *classes);
int feed_obj(T *t, PyObject *o);
int feed_decoded(T *t, PyObject *o);
/* Where the IP header of a frame of link type lt starts (*l3) and where its ethertype is
 * (*et; for raw IP, -1: the version nibble says, -4 / -6: only that version, as
 * facts.linktypes' hints); 0: no inline layout (facts.decode reads such frames). */
static inline int inline_layout(int lt, Py_ssize_t *l3, Py_ssize_t *et)
{
    switch (lt) {
    case 1: *l3 = 14; *et = 12; return 1;                  /* Ethernet */
    case 113: *l3 = 16; *et = 14; return 1;                /* Linux SLL */
    case 276: *l3 = 20; *et = 0; return 1;                 /* Linux SLL2 */
    case 12: case 14: case 101: *l3 = 0; *et = -1; return 1;   /* raw IP */
    case 228: *l3 = 0; *et = -4; return 1;                 /* raw IPv4 */
    case 229: *l3 = 0; *et = -6; return 1;                 /* raw IPv6 */
    default: return 0;
    }
}

/* _ctrack_decode.c */
int inline_decode(const uint8_t *f, Py_ssize_t n, int lt, Py_ssize_t l3, Py_ssize_t et,
                  Seg *s, const uint8_t **pl, Py_ssize_t *pllen);
/* _ctrack_pcap.c */
PyObject *track_pcap(PyObject *self, PyObject *args);
void raise_read_error(int err);
Py_ssize_t read_full(int fd, uint8_t *buf, Py_ssize_t n);
int refill(int fd, uint8_t **buf, Py_ssize_t *cap, Py_ssize_t *blen, Py_ssize_t *pos,
           long long *base, long long *fpos, Py_ssize_t need);
/* _ctrack_pcapng.c */
PyObject *track_pcapng(PyObject *self, PyObject *args);
/* _ctrack_frames.c */
PyObject *track_frames(PyObject *self, PyObject *args);
PyObject *track_frame_batches(PyObject *self, PyObject *args);

/* What the build shares: one bytes object per address (servers repeat), one TcpSegment per
 * frame (the Python tracker's references point at one object per packet too). */
typedef struct {
    Map addr_map, seg_map;
    PyObject **objs;   /* owned: addresses and segments */
    int64_t nobj, capobj;
} B;

/* _ctrack_pyout.c */
int b_init(B *b);
void b_free(B *b);
PyObject *conn_obj(B *b, T *t, int64_t i, PyObject **addrs);
PyObject *rec_obj(B *b, Rec *r, int64_t i, PyObject *conn);
/* _ctrack_pytracker.c */
PyObject *build_tracker(T *t);
/* _ctrack_models.c */
int facts_setup(PyObject *classes);
int facts_ready(void);
PyObject *adopt_exact(PyObject *self, PyObject *args);
PyObject *adopt_dict(PyObject *cls, PyObject *d, PyObject *fs);
PyObject *fact_fields(PyObject *self, PyObject *unused);
PyObject *model(int m, PyObject **v, int n);
PyObject *fact_id(char c, int64_t n);
/* _ctrack_baseline.c */
int facts_start(State *s, PyObject *capture);
void facts_free(F *f);
PyObject *addr_name(F *f, const uint8_t *a, int alen);
int64_t ttl0_count(const Half *h);
PyObject *ttl_hist(const Half *h);
int half_most_common(const Half *h);
PyObject *ttl_values(const Half *h);
/* _ctrack_facts.c */
PyObject *facts_next(State *s);
/* _ctrack_module.c */
PyObject *new_state(T *t);
/* _ctrack_cross.c */
PyObject *cross_analyse(PyObject *self, PyObject *args);
PyObject *capture_votes(PyObject *self, PyObject *conns);

#endif
