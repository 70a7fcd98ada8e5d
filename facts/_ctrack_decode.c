/* What fastpcap's inline branch decodes (Ethernet, Linux SLL/SLL2; IPv4 without options),
 * the same over raw IP, and facts.decode's IPv6-then-TCP case, for one frame, without a
 * Python object. */
#include "_ctrack.h"

/* fastpcap's inline branch (IPv4) and decode's IPv6-then-TCP case, for one frame of n bytes
 * at f whose IP header starts at l3 and ethertype sits at et (inline_layout). 1: s is the
 * segment and [*pl, *pl + *pllen) its captured payload; 0: the frame needs the Python
 * decoder. */
int inline_decode(const uint8_t *f, Py_ssize_t n, int lt, Py_ssize_t l3, Py_ssize_t et,
                  Seg *s, const uint8_t **pl, Py_ssize_t *pllen)
{
    if (n < l3 + 40)
        return 0;
    uint32_t etype, v = f[l3] >> 4;
    if (et >= 0)
        etype = be16(f + et);
    else   /* raw IP: facts.decode.decode_ip's version check against the link type's hint */
        etype = v == 4 && et != -6 ? 0x0800 : v == 6 && et != -4 ? 0x86DD : 0;
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

