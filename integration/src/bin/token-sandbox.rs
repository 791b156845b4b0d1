//! `token-sandbox [--uid N] [--mount DIR] [--cmds C] [--maps M] [--progs P] [--attachs A] --
//! COMMAND…`: runs COMMAND the way a container with a delegated bpffs runs a tracer, for the
//! matrix's BPF token checks (6.9+). Run as root. It follows the kernel's own selftest
//! (`prog_tests/token.c`):
//!
//! 1. a child, as the unprivileged `--uid`, creates a user namespace in which it is root
//!    (uid_map `0 <uid> 1`) and a mount namespace, and opens a bpffs context (`fsopen`), so
//!    the bpffs belongs to its user namespace;
//! 2. this process, root of the initial namespace, sets the `delegate_*` options on it
//!    (only an initial-namespace admin may) and creates the mount;
//! 3. the child mounts it at `--mount` in its own mount namespace (or, where that fails,
//!    names it `/proc/self/fd/N`), and execs COMMAND with `BPF_FEATURES_TOKEN` set to it.
//!
//! Exits with COMMAND's status; 2 when the sandbox itself cannot be set up.
use std::{
    io::{IoSlice, IoSliceMut},
    mem::MaybeUninit,
    os::{
        fd::{AsFd, OwnedFd},
        unix::{net::UnixStream, process::CommandExt},
    },
    process::{Command, ExitCode, Stdio},
};

use clap::Parser;
use rustix::{
    mount::{
        FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, fsconfig_create,
        fsconfig_set_string, fsmount, fsopen, move_mount,
    },
    net::{
        RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
        SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
    },
};

#[derive(Parser)]
struct Args {
    /// The unprivileged user the command runs as (root of its own user namespace).
    #[arg(long, default_value_t = 65534)]
    uid: u32,
    /// Where the delegated bpffs is mounted in the command's mount namespace.
    #[arg(long, default_value = "/sys/fs/bpf")]
    mount: String,
    /// delegate_cmds.
    #[arg(long, default_value = "prog_load:map_create:btf_load")]
    cmds: String,
    /// delegate_maps.
    #[arg(long, default_value = "any")]
    maps: String,
    /// delegate_progs.
    #[arg(long, default_value = "socket_filter:kprobe:tracepoint:xdp")]
    progs: String,
    /// delegate_attachs.
    #[arg(long, default_value = "any")]
    attachs: String,
    /// Internal: the child's side.
    #[arg(long, hide = true)]
    child: bool,
    /// The command.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = if args.child {
        child(&args)
    } else {
        parent(&args)
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("token-sandbox: {e}");
            ExitCode::from(2)
        }
    }
}

fn send_fd(sock: &UnixStream, fd: &OwnedFd) -> Result<(), String> {
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmRights(&fds));
    sendmsg(
        sock,
        &[IoSlice::new(b"f")],
        &mut control,
        SendFlags::empty(),
    )
    .map(drop)
    .map_err(|e| format!("sending a descriptor: {e}"))
}

fn recv_fd(sock: &UnixStream) -> Result<OwnedFd, String> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| format!("receiving a descriptor: {e}"))?;
    control
        .drain()
        .find_map(|m| match m {
            RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
            _ => None,
        })
        .ok_or_else(|| "the other side sent no descriptor (it failed first)".to_string())
}

fn parent(args: &Args) -> Result<u8, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(me)
        .arg("--child")
        .arg("--uid")
        .arg(args.uid.to_string())
        .arg("--mount")
        .arg(&args.mount)
        .arg("--")
        .args(&args.command)
        .uid(args.uid)
        .gid(args.uid)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .spawn()
        .map_err(|e| format!("starting the child: {e}"))?;
    let set_up = (|| {
        let fs = recv_fd(&ours)?;
        for (key, value) in [
            ("delegate_cmds", &args.cmds),
            ("delegate_maps", &args.maps),
            ("delegate_progs", &args.progs),
            ("delegate_attachs", &args.attachs),
        ] {
            fsconfig_set_string(&fs, key, value.as_str())
                .map_err(|e| format!("fsconfig {key}={value}: {e}"))?;
        }
        fsconfig_create(&fs).map_err(|e| format!("creating the bpffs: {e}"))?;
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
            .map_err(|e| format!("fsmount: {e}"))?;
        send_fd(&ours, &mnt)
    })();
    drop(ours);
    let status = child.wait().map_err(|e| e.to_string())?;
    set_up?;
    Ok(status.code().map_or(2, |c| c as u8))
}

fn child(args: &Args) -> Result<u8, String> {
    use nix::{
        mount::MsFlags,
        sched::{CloneFlags, unshare},
        unistd::{Gid, Uid, setgid, setuid},
    };
    // The socket to the parent came as stdin; the command gets /dev/null instead.
    let sock = UnixStream::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| e.to_string())?,
    );
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| format!("unshare(CLONE_NEWUSER): {e}"))?;
    let write = |path: &str, text: String| {
        std::fs::write(path, &text).map_err(|e| format!("{path} <- {text:?}: {e}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {} 1", args.uid))?;
    write("/proc/self/gid_map", format!("0 {} 1", args.uid))?;
    setgid(Gid::from_raw(0)).map_err(|e| format!("setgid(0): {e}"))?;
    setuid(Uid::from_raw(0)).map_err(|e| format!("setuid(0): {e}"))?;
    // fsopen needs CAP_SYS_ADMIN over the mount namespace: one of our own.
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    let fs = fsopen("bpf", FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| format!("fsopen(bpf): {e}"))?;
    send_fd(&sock, &fs)?;
    let mnt = recv_fd(&sock)?;
    drop(sock);
    let path = match move_mount(
        &mnt,
        "",
        rustix::fs::CWD,
        args.mount.as_str(),
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    ) {
        Ok(()) => args.mount.clone(),
        Err(e) => {
            eprintln!(
                "token-sandbox: mounting at {}: {e}; naming the mount by its descriptor",
                args.mount
            );
            let root = rustix::fs::openat(
                &mnt,
                ".",
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| format!("opening the bpffs root: {e}"))?;
            // Left open across the exec: the command opens the bpffs through it.
            format!(
                "/proc/self/fd/{}",
                std::os::fd::IntoRawFd::into_raw_fd(root)
            )
        }
    };
    let devnull = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    let e = Command::new(&args.command[0])
        .args(&args.command[1..])
        .env(probe::token::TOKEN_ENV, &path)
        .stdin(devnull)
        .exec();
    Err(format!("exec {}: {e}", args.command[0]))
}
