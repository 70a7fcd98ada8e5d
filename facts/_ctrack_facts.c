/* The facts of facts/rst.py (connection_model, ConnRsts, rst_event and its helpers) computed
 * straight from the C state: same values, same float arithmetic, same field order, without the
 * intermediate Conn/Half/RstRecord/TcpSegment objects. */
#include "_ctrack.h"

#define EXCERPT_BYTES 64
#define IP_ID_SEQUENCE_MAX 1024
#define GAP_FLOOR_S 0.001
#define RST_SEQ_CHANGE_MAX_S 2.0
#define MAX_WSCALE 14

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
    v[n++] = py_str(K_CONNECTION);                                   /* kind */
    v[n++] = fact_id('c', ci + 1);                              /* id */
    v[n++] = ref(f->capture);                                   /* capture */
    v[n++] = py_int(c->ipv);                                         /* ip_version */
    v[n++] = endpoint(f, c->addr[0], c->alen, c->port[0]);      /* client */
    v[n++] = endpoint(f, c->addr[1], c->alen, c->port[1]);      /* server */
    v[n++] = py_bool(c->inferred);                                    /* roles_inferred */
    v[n++] = py_float(c->start);                                      /* start */
    v[n++] = py_float(c->last_ts);                                    /* end */
    v[n++] = py_int(h0->pkts);                                       /* packets_c2s */
    v[n++] = py_int(h1->pkts);                                       /* packets_s2c */
    v[n++] = py_int(h0->byts);                                       /* bytes_c2s */
    v[n++] = py_int(h1->byts);                                       /* bytes_s2c */
    v[n++] = py_str(K_HS_NONE + c->hs);                              /* handshake */
    v[n++] = optf(c->has_syn, c->syn_ts);                       /* syn_time */
    v[n++] = optf(c->has_synack, c->synack_time);               /* synack_time */
    v[n++] = opti(c->has_syn, c->syn_seq);                      /* client_isn */
    v[n++] = opti(c->has_synack, c->synack_seq);                /* server_isn */
    v[n++] = py_str(fin && rst ? K_FIN_RST : fin ? K_FIN : rst ? K_RST : K_OPEN);   /* close */
    v[n++] = fin_list(c);                                       /* fin_by */
    v[n++] = py_int(c->nrsts);                                       /* rst_count */
    v[n++] = py_float(c->max_gap);                                    /* largest_idle_gap_s */
    v[n++] = optf(c->has_gap_at, c->max_gap_at);                /* largest_idle_gap_at */
    v[n++] = ttl_hist(h0);                                      /* client_ttls */
    v[n++] = ttl_hist(h1);                                      /* server_ttls */
    v[n++] = py_int(h0->ttl_changes);                                /* client_ttl_changes */
    v[n++] = py_int(h1->ttl_changes);                                /* server_ttl_changes */
    v[n++] = py_int(c->maxseg);                                      /* largest_segment */
    v[n++] = py_bool(c->frag);                                        /* fragments_seen */
    v[n++] = py_bool(c->icmp);                                        /* icmp_too_big_seen */
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
    v[n++] = py_str(K_RST);                                          /* kind */
    v[n++] = fact_id('r', ri + 1);                              /* id */
    v[n++] = ref(f->capture);                                   /* capture */
    v[n++] = py_int(seg->frame);                                     /* frame */
    v[n++] = fact_id('c', (int64_t)r->conn + 1);                /* connection_id */
    v[n++] = ref(conn);                                         /* connection */
    v[n++] = ref(side == 0 ? S_CLIENT : S_SERVER);              /* claimed_sender */
    v[n++] = py_float(seg->ts);                                       /* time */
    v[n++] = py_str(seg->flags & ACK ? K_FLAG_RSTACK : K_FLAG_RST);  /* flags */
    v[n++] = PyLong_FromUnsignedLong(seg->seq);                 /* seq */
    v[n++] = PyLong_FromUnsignedLong(seg->ack);                 /* ack */
    v[n++] = py_int(seg->ipv);                                       /* ip_version */
    v[n++] = py_bool(seg->reserved != 0);                             /* reserved_bits_set */
    v[n++] = py_int(seg->payload_len);                               /* rst_payload_len */
    v[n++] = py_int(ttl);                                            /* ttl */
    v[n++] = py_int(init);                                           /* initial_ttl */
    v[n++] = py_int(init - ttl);                                     /* ttl_decrements */
    v[n++] = py_int(init - ttl + 1);                                 /* tracert_hop */
    v[n++] = opti(base_conn >= 0, base_conn);                   /* baseline_ttl_conn */
    v[n++] = ttl_values(sh);                                    /* baseline_ttl_conn_values */
    v[n++] = opti(base_host >= 0, base_host);                   /* baseline_ttl_host */
    v[n++] = opti(has_base, base_init);                         /* baseline_initial_ttl */
    v[n++] = opti(has_base, base_init - baseline);              /* baseline_decrements */
    v[n++] = py_str(source);                                         /* baseline_source */
    v[n++] = opti(has_base, ttl - baseline);                    /* ttl_delta */
    v[n++] = optb(has_base, ttl == baseline);                   /* ttl_matches_baseline */
    v[n++] = optb(has_base, init != base_init);                 /* initial_ttl_differs */
    v[n++] = py_bool(nhist > 1);                                      /* baseline_ttl_varies */
    v[n++] = opti(has_ipid, ip_id);                             /* ip_id */
    v[n++] = opti(has_gap, gap);                                /* ip_id_gap */
    v[n++] = optb(has_gap, 1 <= gap && gap <= IP_ID_SEQUENCE_MAX);   /* ip_id_in_sequence */
    v[n++] = optb(has_ipid && peer, peer && ip_id == peer->ip_id);   /* ip_id_equals_other_last */
    v[n++] = optb(has_ipid, ip_id == 0);                        /* ip_id_zero */
    v[n++] = optb(has_ipid && syn && side == 1, ip_id == c->syn_ip_id);   /* ip_id_equals_syn */
    v[n++] = py_int(seg->window);                                    /* window */
    v[n++] = optb(peer != NULL, peer && seg->window == peer->window);   /* window_equals_other_last */
    v[n++] = py_str(seq_pos);                                        /* seq_position */
    v[n++] = opti(has_seq_off, seq_off);                        /* seq_offset */
    v[n++] = py_str(ack_pos);                                        /* ack_position */
    v[n++] = opti(has_ack_off, ack_off);                        /* ack_offset */
    v[n++] = py_int(c->nrsts);                                       /* rsts_in_connection */
    v[n++] = py_int(r->index);                                       /* rst_index_in_connection */
    v[n++] = py_bool(g->seq_differ[side]);                            /* rst_seq_differ */
    v[n++] = py_bool(g->ack_differ[side]);                            /* rst_ack_differ */
    v[n++] = py_bool(seq_change(r, prev));                            /* rst_seq_change */
    v[n++] = py_bool(r->has_data_after);                              /* data_after_rst */
    v[n++] = optf(r->has_data_after, r->data_after_s);          /* data_after_rst_s */
    v[n++] = py_bool(behind_data(r));                                 /* rst_behind_data */
    v[n++] = py_bool(g->both);                                        /* rst_both_directions */
    v[n++] = optf(syn, seg->ts - c->syn_ts);                    /* since_syn_s */
    v[n++] = py_float(seg->ts - c->start);                            /* since_start_s */
    v[n++] = py_bool(r->hs == HS_COMPLETE);                           /* handshake_completed */
    v[n++] = py_bool(r->syn_seen);                                    /* syn_seen */
    v[n++] = py_bool(r->synack_seen);                                 /* synack_seen */
    v[n++] = py_bool(side == 1 && (seg->flags & ACK) && syn && !r->synack_seen
               && (int64_t)seg->ack == (((int64_t)c->syn_seq + 1) & M32));   /* rst_answers_syn */
    v[n++] = py_bool(side == 0 && r->synack_seen && r->hs == HS_SYNACK);   /* rst_answers_synack */
    v[n++] = py_bool(r->synack_after);                                /* synack_after_rst */
    v[n++] = optf(r->has_idle_before, r->idle_before);          /* idle_before_s */
    v[n++] = optf(r->has_idle_sender, r->idle_sender);          /* idle_sender_s */
    v[n++] = optf(r->has_idle_trigger, r->idle_trigger);        /* idle_before_trigger_s */
    v[n++] = optf(has_sil, silence);                            /* idle_silence_s */
    v[n++] = optf(has_earlier, earlier);                        /* earlier_gap_max_s */
    v[n++] = optf(has_earlier, silence / (GAP_FLOOR_S > earlier ? GAP_FLOOR_S : earlier));
                                                                /* idle_silence_ratio */
    v[n++] = py_int(r->packets_before);                              /* packets_before */
    v[n++] = py_int(r->bytes_before[0]);                             /* bytes_c2s_before */
    v[n++] = py_int(r->bytes_before[1]);                             /* bytes_s2c_before */
    v[n++] = py_int(r->bytes_before[0] + r->bytes_before[1]);        /* payload_bytes_before */
    v[n++] = optf(trig != NULL, trig ? seg->ts - trig->ts : 0); /* trigger_delta_s */
    v[n++] = opti(trig != NULL, trig ? trig->payload_len : 0);  /* trigger_len */
    v[n++] = trig ? excerpt(trig) : none();                     /* trigger_excerpt */
    v[n++] = opti(trig != NULL, trig ? trig->frame : 0);        /* trigger_frame */
    v[n++] = py_int(r->maxseg_before);                               /* largest_segment_before */
    v[n++] = py_bool(c->frag);                                        /* fragments_seen */
    v[n++] = py_bool(c->icmp);                                        /* icmp_too_big_seen */
    v[n++] = opti(c->has_pmtu, c->pmtu);                        /* path_mtu */
    v[n++] = py_bool(r->challenge_ack);                               /* challenge_ack_seen */
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

