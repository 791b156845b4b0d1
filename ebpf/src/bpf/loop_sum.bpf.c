// SPDX-License-Identifier: GPL-2.0
// The `loop` need applied: a tc program returns 0 + 1 + … + (n - 1), its loop run through
// the strategy chosen before load by the frozen `loop_strategy`:
//   0 : open-coded iterator kfuncs bpf_iter_num_new/next/destroy (6.4)
//   1 : the bpf_loop helper (5.17) — program loop_sum_callback
//   2 : a bounded loop (5.3)
//   3 : a loop the compiler unrolls (any kernel), bounded by MAX_N
// The verifier knows loop_strategy's value and walks only its branch. The kfuncs are weak
// externs: where the kernel lacks them, the loader poisons their calls (as libbpf does),
// and the branch that holds them is never walked. bpf_loop's callback is a function
// pointer (`ld_imm64` of BPF_PSEUDO_FUNC, 5.13), which an older verifier refuses wherever
// it is: it lives in a program of its own, loaded only for strategy 1.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_N 32

struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

const volatile __u32 loop_strategy = 2;
const volatile __u32 n = 16;

struct sum {
	__u32 total;
};

static long add_one(__u64 i, void *ctx)
{
	struct sum *s = ctx;

	s->total += (__u32)i;
	return 0;
}

SEC("classifier")
int loop_sum(struct __sk_buff *skb)
{
	struct sum s = { 0 };
	__u32 limit = n > MAX_N ? MAX_N : n;

	if (loop_strategy == 0) {
		struct bpf_iter_num it;
		int *v;

		bpf_iter_num_new(&it, 0, limit);
		while ((v = bpf_iter_num_next(&it)))
			s.total += *v;
		bpf_iter_num_destroy(&it);
	} else if (loop_strategy == 2) {
		for (__u32 i = 0; i < limit && i < MAX_N; i++)
			s.total += i;
	} else {
#pragma clang loop unroll(full)
		for (__u32 i = 0; i < MAX_N; i++)
			if (i < limit)
				s.total += i;
	}
	return s.total;
}

SEC("classifier")
int loop_sum_callback(struct __sk_buff *skb)
{
	struct sum s = { 0 };
	__u32 limit = n > MAX_N ? MAX_N : n;

	bpf_loop(limit, add_one, &s, 0);
	return s.total;
}

char LICENSE[] SEC("license") = "GPL";
