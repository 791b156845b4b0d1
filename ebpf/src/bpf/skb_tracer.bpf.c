// SPDX-License-Identifier: GPL-2.0
// A pwru-style skb tracer: one program per way of reaching the skb (fentry: the n-th
// argument of the u64 array; kprobe and kprobe_multi: the n-th argument register), for
// n = 1..5, as pwru has. Each load of a program traces one function: `func_index` is
// rewritten before load, and a hit on an skb whose mark is `want_mark` counts in
// hits[func_index]. pt_regs and sk_buff are read by CO-RE, so the offsets are the
// running kernel's.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct sk_buff {
	__u32 mark;
} __attribute__((preserve_access_index));

// The x86-64 argument registers, by their kernel names (CO-RE relocates the offsets).
struct pt_regs {
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long cx;
	unsigned long r8;
} __attribute__((preserve_access_index));

const volatile __u32 func_index = 0;
const volatile __u32 want_mark = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

static __always_inline int seen(__u64 skb_addr)
{
	struct sk_buff *skb = (struct sk_buff *)skb_addr;
	__u32 mark = BPF_CORE_READ(skb, mark);
	__u32 key = func_index;
	__u64 *count;

	if (mark != want_mark)
		return 0;
	count = bpf_map_lookup_elem(&hits, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

#define FENTRY(n)                                                                  \
	SEC("fentry/skb")                                                          \
	int skb_fentry_##n(__u64 *ctx)                                             \
	{                                                                          \
		return seen(ctx[n - 1]);                                           \
	}

FENTRY(1)
FENTRY(2)
FENTRY(3)
FENTRY(4)
FENTRY(5)

#define KPROBE(n, reg)                                                             \
	SEC("kprobe/skb")                                                          \
	int skb_kprobe_##n(struct pt_regs *ctx)                                    \
	{                                                                          \
		return seen(BPF_CORE_READ(ctx, reg));                              \
	}

KPROBE(1, di)
KPROBE(2, si)
KPROBE(3, dx)
KPROBE(4, cx)
KPROBE(5, r8)

char LICENSE[] SEC("license") = "GPL";
