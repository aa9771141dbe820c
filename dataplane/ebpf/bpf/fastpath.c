// SPDX-License-Identifier: GPL-2.0
//
// keepstate's kernel fast path: a cache of the Go engine's decisions for
// established connections. See doc.go for the protocol; every packet this program
// is not sure of goes on unchanged to keepstate's NFQUEUE hook and the engine.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MARK_ACCEPT 0x4b530002 // accepted here: the NFQUEUE hook lets it pass
#define MARK_PASSED 0x4b530003 // an offloaded connection's packet for the engine

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define MAX_ACK_WINDOW 66000 // conntrack's maxAckWindow

// ks_key is a connection's tuple with its two endpoints in a fixed order (the
// lesser address, then port, first), so that both directions find it. IPv4
// addresses are IPv4-mapped, as in conntrack.Key.
struct ks_key {
	__u8 a[16];
	__u8 b[16];
	__u16 aport; // network order
	__u16 bport;
	__u8 proto;
	__u8 pad[3];
};

// ks_dir is one direction's state, the sender's view as in conntrack's tcpDir.
struct ks_dir {
	__u32 end;
	__u32 maxend;
	__u32 maxwin;
	__u32 ifindex; // the interface this direction's packets arrive on
	__u64 packets; // totals, not deltas: the engine's counts at hand-over plus ours
	__u64 bytes;
	__u8 scale;   // window scale of this direction's advertised windows
	__u8 sack;    // this direction's SYN offered SACK: its peer's SACK blocks count
	__u8 unacked; // this direction sent data the other has not acknowledged
	__u8 pad[5];
};

struct ks_conn {
	struct bpf_spin_lock lock;
	__u8 orig_is_a; // the connection's original direction goes from a to b
	__u8 v6;
	__u8 pad[2];
	__u64 last_seen;       // CLOCK_BOOTTIME ns
	__u64 timeout;         // idle timeout, ns
	__u64 unacked_timeout; // TCP: the timeout while data is unacknowledged
	struct ks_dir dir[2];  // 0 original, 1 reply
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ks_key);
	__type(value, struct ks_conn);
} conns SEC(".maps");

enum {
	STAT_PACKETS,
	STAT_BYTES,
	STAT_PASSED,
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);
	if (v)
		*v += n;
}

static __always_inline int before(__u32 a, __u32 b) { return (__s32)(a - b) < 0; }
static __always_inline int after(__u32 a, __u32 b) { return (__s32)(b - a) < 0; }

// parsed is what the program reads of a packet.
struct parsed {
	struct ks_key key;
	int src_is_a;
	__u8 v6;
	__u8 flags;
	__u16 window;
	__u32 seq, ack, end;
	__u32 iplen;
	int has_sack; // the last SACK option's highest right edge is in sack
	__u32 sack;
};

// order fills key.a/b from src and dst (16 bytes each) and the ports, and says
// whether the source is endpoint a.
static __always_inline int order(struct ks_key *k, const __u8 *src, const __u8 *dst, __u16 sport, __u16 dport)
{
	int cmp = 0;
	for (int i = 0; i < 16; i++) {
		if (cmp == 0 && src[i] != dst[i])
			cmp = src[i] < dst[i] ? -1 : 1;
	}
	if (cmp == 0 && sport != dport)
		cmp = bpf_ntohs(sport) < bpf_ntohs(dport) ? -1 : 1;
	int src_a = cmp <= 0;
	if (src_a) {
		__builtin_memcpy(k->a, src, 16);
		__builtin_memcpy(k->b, dst, 16);
		k->aport = sport;
		k->bport = dport;
	} else {
		__builtin_memcpy(k->a, dst, 16);
		__builtin_memcpy(k->b, src, 16);
		k->aport = dport;
		k->bport = sport;
	}
	return src_a;
}

// optwalk is the state of the TCP option walk, one option per bpf_loop step
// (a loop the verifier checks once instead of once per path through it).
struct optwalk {
	__u8 o[64]; // 40 option bytes at most; indexed & 63 so that the verifier sees every index in bounds
	__u32 i, len;
	int bad;
	int has_sack;
	__u32 sack;
};

static long opt_step(__u64 index, void *ctx)
{
	struct optwalk *w = ctx;
	__u32 i = w->i;
	if (i >= w->len || i >= 40)
		return 1;
	__u8 kind = w->o[i & 63];
	if (kind == 0)
		return 1;
	if (kind == 1) {
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= w->len || i + 1 >= 40) {
		w->bad = 1;
		return 1;
	}
	__u32 n = w->o[(i + 1) & 63];
	if (n < 2 || i + n > w->len) {
		w->bad = 1;
		return 1;
	}
	if (kind == 5 && n >= 10 && (n - 2) % 8 == 0) {
		// The last SACK option's blocks are the ones package packet keeps
		// (at most four).
		__u32 blocks = (n - 2) / 8;
		__u32 best = 0;
		int have = 0;
		for (__u32 b = 0; b < 4 && b < blocks; b++) {
			__u32 at = i + 2 + 8 * b + 4;
			if (at + 4 > 40)
				break;
			__u32 r = (__u32)w->o[at & 63] << 24 | (__u32)w->o[(at + 1) & 63] << 16 |
				  (__u32)w->o[(at + 2) & 63] << 8 | (__u32)w->o[(at + 3) & 63];
			if (!have || after(r, best))
				best = r;
			have = 1;
		}
		w->has_sack = have;
		w->sack = best;
	}
	w->i = i + n;
	return 0;
}

// tcp_options walks the options as package packet does: a walk that cannot go on
// makes the packet malformed (returns -1); the last SACK option's blocks count.
static __always_inline int tcp_options(struct __sk_buff *skb, __u32 off, __u32 len, struct parsed *p)
{
	struct optwalk w = {};
	if (len == 0)
		return 0;
	__u32 n0 = len & 0x3f;
	if (n0 == 0 || n0 > 40 || n0 != len)
		return -1;
	if (bpf_skb_load_bytes(skb, off, w.o, n0) < 0)
		return -1;
	w.len = n0;
	bpf_loop(40, opt_step, &w, 0);
	if (w.bad)
		return -1;
	p->has_sack = w.has_sack;
	p->sack = w.sack;
	return 0;
}

// parse reads an IPv4 or IPv6 TCP or UDP packet that is not a fragment. It
// returns 0 when the packet is one the fast path may decide, -1 otherwise (then
// the engine decides it).
static __always_inline int parse(struct __sk_buff *skb, struct parsed *p)
{
	__u8 src[16] = {}, dst[16] = {};
	__u32 l3 = ETH_HLEN, l4, seg;
	__u8 proto;

	// At TC ingress the packet starts at its Ethernet header. A device without
	// one (or a tag still in the packet) is the engine's.
	__u16 ethertype;
	if (bpf_skb_load_bytes(skb, 12, &ethertype, 2) < 0 || ethertype != skb->protocol)
		return -1;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 h[20];
		if (bpf_skb_load_bytes(skb, l3, h, 20) < 0)
			return -1;
		if (h[0] >> 4 != 4)
			return -1;
		__u32 ihl = (h[0] & 0x0f) * 4;
		__u32 total = (__u32)h[2] << 8 | h[3];
		__u16 frag = (__u16)h[6] << 8 | h[7];
		if (ihl < 20 || total < ihl || total == 0 || (frag & 0x3fff) != 0)
			return -1;
		if (total > skb->len - l3)
			return -1;
		proto = h[9];
		src[10] = 0xff, src[11] = 0xff, dst[10] = 0xff, dst[11] = 0xff;
		__builtin_memcpy(&src[12], &h[12], 4);
		__builtin_memcpy(&dst[12], &h[16], 4);
		l4 = l3 + ihl;
		seg = total - ihl;
		p->iplen = total;
		p->v6 = 0;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 h[40];
		if (bpf_skb_load_bytes(skb, l3, h, 40) < 0)
			return -1;
		if (h[0] >> 4 != 6)
			return -1;
		__u32 plen = (__u32)h[4] << 8 | h[5];
		if (plen == 0 || 40 + plen > skb->len - l3)
			return -1;
		proto = h[6]; // extension headers: the engine's
		__builtin_memcpy(src, &h[8], 16);
		__builtin_memcpy(dst, &h[24], 16);
		l4 = l3 + 40;
		seg = plen;
		p->iplen = 40 + plen;
		p->v6 = 1;
	} else {
		return -1;
	}

	__u16 sport, dport;
	if (proto == IPPROTO_TCP) {
		__u8 t[20];
		if (seg < 20 || bpf_skb_load_bytes(skb, l4, t, 20) < 0)
			return -1;
		__builtin_memcpy(&sport, &t[0], 2);
		__builtin_memcpy(&dport, &t[2], 2);
		p->seq = (__u32)t[4] << 24 | (__u32)t[5] << 16 | (__u32)t[6] << 8 | t[7];
		p->ack = (__u32)t[8] << 24 | (__u32)t[9] << 16 | (__u32)t[10] << 8 | t[11];
		__u32 doff = (t[12] >> 4) * 4;
		p->flags = t[13];
		p->window = (__u16)t[14] << 8 | t[15];
		if (doff < 20 || doff > seg)
			return -1;
		if (tcp_options(skb, l4 + 20, doff - 20, p) < 0)
			return -1;
		p->end = p->seq + (seg - doff); // no SYN or FIN here: the caller checks
	} else if (proto == IPPROTO_UDP) {
		__u8 u[8];
		if (seg < 8 || bpf_skb_load_bytes(skb, l4, u, 8) < 0)
			return -1;
		__builtin_memcpy(&sport, &u[0], 2);
		__builtin_memcpy(&dport, &u[2], 2);
		__u32 ulen = (__u32)u[4] << 8 | u[5];
		if (ulen < 8 || ulen > seg)
			return -1;
	} else {
		return -1;
	}
	p->key.proto = proto;
	p->src_is_a = order(&p->key, src, dst, sport, dport);
	return 0;
}

// in_window is conntrack's inWindow for an established connection's segment
// without SYN, FIN or RST and with ACK, in direction d: the four bounds, then the
// window state's advance. It returns 0 for every segment inWindow does not find
// in the window (windowOK): one it drops, and one it lets pass without advancing
// (a late retransmission, a delayed ack, data beyond a window update it never
// saw); the engine decides those and says why. An empty segment's sequence
// number is checked as any other's, as inWindow does.
static __always_inline int in_window(struct ks_conn *c, int d, struct parsed *p)
{
	struct ks_dir *s = &c->dir[d & 1], *r = &c->dir[(d ^ 1) & 1];
	__u32 seq = p->seq, ack = p->ack, end = p->end;
	__u32 win = p->window;
	__u32 sack = ack;

	if (r->sack && p->has_sack && after(p->sack, sack))
		sack = p->sack;

	__u32 ackwin = s->maxwin > MAX_ACK_WINDOW ? s->maxwin : MAX_ACK_WINDOW;
	if (after(seq, s->maxend) || before(end, s->end - r->maxwin) || after(sack, r->end) ||
	    before(sack, r->end - ackwin))
		return 0;

	win <<= (s->scale & 0x0f);
	__u32 swin = win + (sack - ack);
	if (s->maxwin < swin)
		s->maxwin = swin;
	if (after(end, s->end)) {
		s->end = end;
		s->unacked = 1;
	}
	if (!before(ack, r->end))
		r->unacked = 0;
	if (r->maxwin != 0 && after(end, s->maxend))
		r->maxwin += end - s->maxend;
	if (after(sack + win, r->maxend - 1)) {
		r->maxend = sack + win;
		if (win == 0)
			r->maxend++;
	}
	return 1;
}

// decide is the whole decision: 1 accepted here (the entry updated), 0 the packet
// is not an offloaded connection's, -1 it is but the engine must decide it.
static __always_inline int decide(struct __sk_buff *skb)
{
	struct parsed p = {};
	if (parse(skb, &p) < 0)
		return 0;
	struct ks_conn *c = bpf_map_lookup_elem(&conns, &p.key);
	if (!c)
		return 0;
	if (c->v6 != p.v6)
		return -1;
	int d = p.src_is_a == c->orig_is_a ? 0 : 1;
	if (p.key.proto == IPPROTO_TCP) {
		__u8 f = p.flags & ~(TCP_PSH | TCP_ECE | TCP_CWR);
		if (f != TCP_ACK && f != (TCP_ACK | TCP_URG))
			return -1;
	}
	__u64 now = bpf_ktime_get_boot_ns();
	int ok = 0;
	bpf_spin_lock(&c->lock);
	struct ks_dir *s = &c->dir[d & 1];
	__u64 timeout = c->timeout;
	if (p.key.proto == IPPROTO_TCP && (c->dir[0].unacked | c->dir[1].unacked))
		timeout = c->unacked_timeout;
	if (s->ifindex == skb->ingress_ifindex && now - c->last_seen < timeout &&
	    (p.key.proto != IPPROTO_TCP || in_window(c, d, &p))) {
		if (now > c->last_seen)
			c->last_seen = now;
		s->packets++;
		s->bytes += p.iplen;
		ok = 1;
	}
	bpf_spin_unlock(&c->lock);
	if (!ok)
		return -1;
	count(STAT_PACKETS, 1);
	count(STAT_BYTES, p.iplen);
	return 1;
}

SEC("tc")
int keepstate_fastpath(struct __sk_buff *skb)
{
	switch (decide(skb)) {
	case 1:
		skb->mark = MARK_ACCEPT;
		break;
	case -1:
		skb->mark = MARK_PASSED;
		count(STAT_PASSED, 1);
		break;
	}
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
