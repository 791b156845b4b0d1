// SPDX-License-Identifier: GPL-2.0
// A tracer written as another project would write it, not as ours: it is what the library's
// generic path (`trace::trace`) must load unchanged. Its own names for the func_ip globals,
// a tag global, an LRU hash of the skbs seen, a per-CPU hash of calls counted by a global
// subprogram, and skb->len and skb->protocol read with BPF_CORE_READ: the local struct
// below has deliberately wrong offsets, so only a CO-RE relocation against the kernel's BTF
// gives the right values.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct sk_buff {
	__u16 protocol;
	__u32 len;
} __attribute__((preserve_access_index));

const volatile __u32 cfg_want_helper = 0;
const volatile __u64 cfg_traced_addr = 0;
const volatile __u32 cfg_tag = 0;

struct call {
	__u64 ip;
	__u64 skb;
	__u64 retval;
	__u32 len;
	__u16 protocol;
	__u16 exit;
	__u32 tag;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} calls SEC(".maps");

struct seen {
	__u32 len;
	__u16 protocol;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u64);
	__type(value, struct seen);
} skbs_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} call_counts SEC(".maps");

// A global (non-static) subprogram: verified on its own, so the load needs the object's
// BTF with func_info.
__attribute__((noinline)) int count_call(__u32 exit)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&call_counts, &exit);

	if (n) {
		*n += 1;
		return 0;
	}
	bpf_map_update_elem(&call_counts, &exit, &one, BPF_NOEXIST);
	return 0;
}

static __always_inline int report(__u64 *ctx, __u64 retval, __u16 exit)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	struct seen s = {};
	struct call *c;

	s.len = BPF_CORE_READ(skb, len);
	s.protocol = BPF_CORE_READ(skb, protocol);
	__u64 key = (__u64)skb;
	bpf_map_update_elem(&skbs_seen, &key, &s, BPF_ANY);
	count_call(exit);

	c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
	if (!c)
		return 0;
	c->ip = cfg_want_helper ? bpf_get_func_ip(ctx) : cfg_traced_addr;
	c->skb = key;
	c->retval = retval;
	c->len = s.len;
	c->protocol = s.protocol;
	c->exit = exit;
	c->tag = cfg_tag;
	c->pad = 0;
	bpf_ringbuf_submit(c, 0);
	return 0;
}

SEC("fentry")
int on_entry(__u64 *ctx)
{
	return report(ctx, 0, 0);
}

SEC("fexit")
int on_exit(__u64 *ctx)
{
	return report(ctx, ctx[1], 1);
}

char LICENSE[] SEC("license") = "GPL";
