// SPDX-License-Identifier: GPL-2.0
// fentry/fexit tracers for a kprobe program target (BPF_PROG(x, struct pt_regs *regs) and,
// in fexit, its return value), reporting the function IP by the func_ip strategy chosen
// before load (as func_ip.bpf.c) and the traced call's first argument, regs->di.
//
// regs->di is read at `regs_di_off`, taken from the kernel's BTF and rewritten before load.
// Where the verifier types the argument as struct pt_regs (6.3, and 6.1.16 by backport),
// it is read directly (read_directly = 1: no helper, so lockdown does not stop it);
// before, the argument is a plain number and bpf_probe_read_kernel reads it.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u8 use_helper = 0;
const volatile __u64 target_addr = 0;
const volatile __u32 regs_di_off = 0;
const volatile __u8 read_directly = 1;

struct event {
	__u64 ip;
	__u64 retval;
	__u64 regs;
	__u64 arg;
	__u32 kind;
	__u32 used_helper;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

static __always_inline __u64 first_arg(__u64 *ctx)
{
	__u64 v = 0;
	if (read_directly)
		return *(__u64 *)((char *)ctx[0] + regs_di_off);
	bpf_probe_read_kernel(&v, sizeof(v), (void *)(ctx[0] + regs_di_off));
	return v;
}

static __always_inline void emit(__u64 *ctx, __u64 retval, __u32 kind)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->ip = use_helper ? bpf_get_func_ip(ctx) : target_addr;
	e->retval = retval;
	e->regs = ctx[0];
	e->arg = first_arg(ctx);
	e->kind = kind;
	e->used_helper = use_helper;
	bpf_ringbuf_submit(e, 0);
}

// For a subprogram of the target whose first argument is a plain number (record_sock).
SEC("fentry")
int arg_entry(__u64 *ctx)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->ip = use_helper ? bpf_get_func_ip(ctx) : target_addr;
	e->retval = 0;
	e->regs = 0;
	e->arg = ctx[0];
	e->kind = 2;
	e->used_helper = use_helper;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("fentry")
int regs_entry(__u64 *ctx)
{
	emit(ctx, 0, 0);
	return 0;
}

SEC("fexit")
int regs_exit(__u64 *ctx)
{
	emit(ctx, ctx[1], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
