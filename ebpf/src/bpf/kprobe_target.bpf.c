// SPDX-License-Identifier: GPL-2.0
// A traced kprobe program, as tracers meet them: k_tcp_connect on tcp_connect records the
// connection's struct sock * (its first argument) and tail-calls k_handler through a prog
// array; k_handler records the same argument and returns 0. k_tcp_connect returns 1 only
// when the tail call fails, so an fexit on it that sees 0 saw the tail call happen.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

// The kprobe context: x86-64's struct pt_regs (arch/x86/include/asm/ptrace.h), up to the
// first argument register. Its name must stay `pt_regs`: fentry on this program types its
// argument from the name (6.3, 6.1.16). The uapi header under -target bpf has another
// architecture's layout.
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
};

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} jumps SEC(".maps");

// 0: the sock k_tcp_connect saw; 1: the sock k_handler saw; 2: the sock record_sock got.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline void record(__u32 slot, __u64 value)
{
	bpf_map_update_elem(&seen, &slot, &value, BPF_ANY);
}

// A global subprogram (its own BTF function, verified on its own): what cilium/ebpf's
// AttachTo names inside a target program.
__attribute__((noinline)) int record_sock(__u64 sk)
{
	record(2, sk);
	return 0;
}

SEC("kprobe/tcp_connect")
int k_tcp_connect(struct pt_regs *ctx)
{
	record(0, ctx->di);
	record_sock(ctx->di);
	bpf_tail_call(ctx, &jumps, 0);
	return 1;
}

SEC("kprobe/tcp_connect")
int k_handler(struct pt_regs *ctx)
{
	record(1, ctx->di);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
