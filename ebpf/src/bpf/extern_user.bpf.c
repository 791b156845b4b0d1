// SPDX-License-Identifier: GPL-2.0
// An object with an extern ksym, which aya-obj 0.3 cannot resolve: the library must refuse
// it, naming the symbol, instead of loading a program that reads address 0.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const int bpf_prog_active __ksym;

const volatile __u8 use_helper = 0;
const volatile __u64 target_addr = 0;

SEC("fentry")
int uses_extern(__u64 *ctx)
{
	return (int)(long)&bpf_prog_active;
}

char LICENSE[] SEC("license") = "GPL";
