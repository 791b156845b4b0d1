// SPDX-License-Identifier: GPL-2.0
// The traced target: a tc classifier that lets every packet through. Its address is what
// the fentry/fexit tracers must report.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("classifier")
int tc_target(struct __sk_buff *skb)
{
	return skb->len > 0 ? TC_ACT_OK : TC_ACT_SHOT;
}

// A second, different target: tracers that follow every tc program (pwru) trace both at
// once. Its return value tells the two apart in fexit.
SEC("classifier")
int tc_other(struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(0x86DD) ? 6 : 4;
}

char LICENSE[] SEC("license") = "GPL";
