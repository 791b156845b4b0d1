use super::*;

#[test]
fn releases_of_many_distributions() {
    for (raw, v, suffix) in [
        ("5.10.0-46-amd64", "5.10.0", "-46-amd64"),
        ("6.12.107+deb13-amd64", "6.12.107", "+deb13-amd64"),
        ("6.1.0-56-cloud-amd64", "6.1.0", "-56-cloud-amd64"),
        ("5.15.0-1034-aws", "5.15.0", "-1034-aws"),
        ("5.4.0-100-generic", "5.4.0", "-100-generic"),
        (
            "4.18.0-513.5.1.el8_9.x86_64",
            "4.18.0",
            "-513.5.1.el8_9.x86_64",
        ),
        ("3.10.0-1160.el7.x86_64", "3.10.0", "-1160.el7.x86_64"),
        ("6.8.0-rc3", "6.8.0", "-rc3"),
        ("6.18.44-fc-v669", "6.18.44", "-fc-v669"),
        ("6.1", "6.1.0", ""),
        ("6.6.0+", "6.6.0", "+"),
        ("5.15.300", "5.15.300", ""),
    ] {
        let r = KernelRelease::parse(raw).unwrap();
        assert_eq!(r.version.to_string(), v, "{raw}");
        assert_eq!(r.suffix, suffix, "{raw}");
    }
    assert_eq!(
        KernelRelease::parse("5.15.300").unwrap().version_code(),
        (5 << 16) | (15 << 8) | 255
    );
    for bad in [
        "",
        "linux",
        "6",
        "v6.1",
        "4294967296.0",
        "6.300",
        "99999999999999999999.1",
    ] {
        assert!(KernelRelease::parse(bad).is_err(), "{bad}");
    }
    assert!(
        KernelRelease::parse("5.10.0-46-amd64")
            .unwrap()
            .at_least(5, 10)
    );
    assert!(
        !KernelRelease::parse("5.10.0-46-amd64")
            .unwrap()
            .at_least(5, 11)
    );
}

#[test]
fn config_lines() {
    let c = parse_config(
        "# comment\nCONFIG_BPF=y\n# CONFIG_BPF_LSM is not set\nCONFIG_HZ=250\nCONFIG_LSM=\"lockdown,bpf\"\n\n",
    );
    assert_eq!(c["CONFIG_BPF"], "y");
    assert_eq!(c["CONFIG_BPF_LSM"], "n");
    assert_eq!(c["CONFIG_HZ"], "250");
    assert_eq!(c["CONFIG_LSM"], "lockdown,bpf");
    assert_eq!(c.len(), 4);
}

#[test]
fn lockdown_and_caps() {
    let status = "Name:\tx\nCapEff:\t000001ffffffffff\n";
    let p = Privileges::from_cap_eff(0, parse_cap_eff(status).unwrap());
    assert!(p.cap_bpf && p.cap_perfmon && p.cap_sys_admin && p.may_load_bpf());
    let none = Privileges::from_cap_eff(1000, parse_cap_eff("CapEff:\t0000000000000000").unwrap());
    assert!(!none.may_load_bpf());
    let sys = SystemInfo {
        privileges: none,
        ..Default::default()
    };
    assert!(sys.why_probing_is_impossible().unwrap().contains("CAP_BPF"));
}

#[test]
fn mounts() {
    let m = "sysfs /sys sysfs rw 0 0\ntracefs /sys/kernel/tracing tracefs rw 0 0\nbpf /sys/fs/bpf bpf rw 0 0\n";
    assert_eq!(
        mount_point(m, "tracefs").as_deref(),
        Some("/sys/kernel/tracing")
    );
    assert_eq!(mount_point(m, "bpf").as_deref(), Some("/sys/fs/bpf"));
    assert_eq!(mount_point(m, "debugfs"), None);
}
