// SPDX-License-Identifier: GPL-2.0
// fentry/fexit tracers for a BPF program target, reporting which function they run in.
//
// Both strategies live in one object, chosen before load by rewriting the read-only
// globals below (aya's override_global; cilium/ebpf's RewriteConstants):
//   use_helper = 1 : bpf_get_func_ip(ctx)          (5.15; on a BPF program target, 5.18)
//   use_helper = 0 : target_addr, resolved in user space from bpf_prog_info.jited_ksyms
//                    or /proc/kallsyms
// The globals live in a frozen .rodata map, so the verifier knows use_helper's value and
// prunes the branch not taken: the helper call loads even where the kernel lacks it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u8 use_helper = 0;
const volatile __u64 target_addr = 0;
// offsetof(struct sk_buff, len) on this kernel, from its BTF, rewritten the same way (no
// CO-RE needed on the raw load path); 0 = unknown, skb_len is then reported as 0.
const volatile __u32 skb_len_off = 0;

enum event_kind { EVENT_ENTRY = 0, EVENT_EXIT = 1, EVENT_SELF_CHECK = 2 };

struct event {
	__u64 ip;
	__u64 retval;
	__u64 skb;
	__u32 skb_len;
	__u32 kind;
	__u32 used_helper;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

static __always_inline __u64 func_ip(void *ctx)
{
	if (use_helper)
		return bpf_get_func_ip(ctx);
	return target_addr;
}

static __always_inline void emit(__u64 ip, __u64 retval, __u64 skb, __u32 skb_len, __u32 kind)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->ip = ip;
	e->retval = retval;
	e->skb = skb;
	e->skb_len = skb_len;
	e->kind = kind;
	e->used_helper = use_helper;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

// The target's context is the kernel's struct sk_buff (tc programs see it as __sk_buff;
// the verifier types fentry's argument as the kernel's struct). It is read directly, as a
// BTF-typed pointer plus a constant offset: no helper is called, so lockdown (which
// refuses bpf_probe_read_kernel under confidentiality) does not stop the tracer.
static __always_inline __u32 skb_len(__u64 *ctx)
{
	if (!skb_len_off)
		return 0;
	return *(__u32 *)((char *)ctx[0] + skb_len_off);
}

// The target's only argument is its context (the skb); fexit sees the return value after
// the arguments.
SEC("fentry")
int trace_entry(__u64 *ctx)
{
	emit(func_ip(ctx), 0, ctx[0], skb_len(ctx), EVENT_ENTRY);
	return 0;
}

SEC("fexit")
int trace_exit(__u64 *ctx)
{
	emit(func_ip(ctx), ctx[1], ctx[0], skb_len(ctx), EVENT_EXIT);
	return 0;
}

// Not a tracer: reports the rewritten constants when run with BPF_PROG_TEST_RUN, so the
// injection is checked even where fentry cannot load.
SEC("classifier")
int self_check(struct __sk_buff *skb)
{
	emit(target_addr, use_helper, 0, skb->len, EVENT_SELF_CHECK);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
