/* facts.tracker.Tracker's per-packet state machine on C structs: every decision mirrors
 * facts/tracker.py (feed, _new_conn, _slow_path, _rst, _patch_rsts, _note_ttl, _note_fragmented).
 * Segments are copied by value into the state that references them (payload cut to 64 bytes,
 * as the Python tracker trims it; a RST keeps its whole payload). */
#include "_ctrack.h"

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
/* The capture's first and last packet times, as Tracker.first_ts/last_ts. */
void note_ts(T *t, double ts)
{
    if (!t->has_ts) {
        t->first_ts = ts;
        t->has_ts = 1;
    }
    t->last_ts = ts;
}

/* A segment the inline decoder made: its frame, time and, when the record has one (dir not
 * 0), the record's direction over the link header's (as decode() does), then the tracker.
 * feed_seg's result (-1: no memory). Touches no Python object: callable without the GIL. */
int feed_inline(T *t, Seg *s, int64_t frame, double ts, int dir, const uint8_t *pl,
                Py_ssize_t pllen)
{
    if (dir)
        s->direction = (uint8_t)dir;
    s->frame = frame;
    s->ts = ts;
    note_ts(t, ts);
    return feed_seg(t, s, pl, pllen, NULL);
}

int feed_seg(T *t, Seg *p, const uint8_t *pl, Py_ssize_t pllen, PyObject *plobj)
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
