//! Who is on the other end of a loopback connection: the process that holds its socket.
//!
//! An instance's Runtime API hands out events, and whoever answers them decides whether
//! their records count as processed. Any local process could connect to the port, so the
//! listener serves only the process spillway started for the instance, its
//! descendants, and spillway's own process. On Linux the peer is found through procfs: the peer's end of the
//! connection is a line of `/proc/net/tcp` (or `tcp6`) whose local address is the peer's
//! and whose remote address is our listener's; that line names the socket's inode, and
//! the process holding the socket has `socket:[inode]` among its `/proc/<pid>/fd/*`.
//! Elsewhere the check is not available and every caller is served.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What the check found about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The instance's process, or one of its descendants.
    Instance,
    /// Another process; its pid when it could be found.
    Foreign(Option<u32>),
}

/// Whether the connection from `peer` to our listener at `listener` comes from `root`
/// or one of its descendants.
#[cfg(target_os = "linux")]
pub fn identify(peer: SocketAddr, listener: SocketAddr, root: u32) -> Peer {
    let Some(inode) = socket_inode(peer, listener) else {
        return Peer::Foreign(None);
    };
    let link = format!("socket:[{inode}]");
    // spillway itself may call (an in-process harness playing the runtime, as the fuzz
    // target does): it is no foreign process.
    let me = std::process::id();
    if process_tree(root)
        .into_iter()
        .chain(std::iter::once(me))
        .any(|p| holds(p, &link))
    {
        return Peer::Instance;
    }
    Peer::Foreign(owner(&link))
}

#[cfg(not(target_os = "linux"))]
pub fn identify(_peer: SocketAddr, _listener: SocketAddr, _root: u32) -> Peer {
    Peer::Instance
}

/// The inode of the socket whose local address is `local` and remote is `remote`.
fn socket_inode(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .into_iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            find_inode(&text, local, remote)
        })
}

/// Finds the inode of the `local` -> `remote` socket in a `/proc/net/tcp{,6}` table.
fn find_inode(table: &str, local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        if parse_address(l)? == local && parse_address(r)? == remote {
            inode.parse().ok().filter(|i| *i != 0)
        } else {
            None
        }
    })
}

/// Parses procfs' `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the address
/// is printed as 32-bit words in the host's byte order, the port in plain hex. IPv4
/// addresses mapped into IPv6 come back as IPv4, as an IPv4 listener sees its peers.
fn parse_address(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `root` and its descendants, from the kernel's children lists (`/proc/<pid>/task/*/children`),
/// or, where the kernel has none, from every process' parent in `/proc/*/stat`.
fn process_tree(root: u32) -> Vec<u32> {
    if std::fs::metadata(format!("/proc/{root}/task/{root}/children")).is_err() {
        return tree_from_stat(root);
    }
    let mut tree = vec![root];
    let mut seen = HashSet::from([root]);
    let mut i = 0;
    while let Some(&pid) = tree.get(i) {
        i += 1;
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if seen.insert(child) {
                    tree.push(child);
                }
            }
        }
    }
    tree
}

/// `root` and its descendants, by every process' parent.
fn tree_from_stat(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = processes()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, parent_in_stat(&stat)?))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while let Some(&pid) = tree.get(i) {
        i += 1;
        for (child, _) in parents.iter().filter(|(c, p)| *p == pid && *c != root) {
            if !tree.contains(child) {
                tree.push(*child);
            }
        }
    }
    tree
}

/// The parent pid in a `/proc/<pid>/stat` line: `pid (comm) state ppid ...`, where the
/// command name may itself hold spaces and parentheses.
fn parent_in_stat(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every process id in `/proc`.
fn processes() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// Whether process `pid` has a descriptor open on `link` (`socket:[inode]`).
fn holds(pid: u32, link: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == link))
}

/// The process holding `link`, among those whose descriptors we may read (for the log).
fn owner(link: &str) -> Option<u32> {
    processes().find(|pid| holds(*pid, link))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_procfs_addresses() {
        let v4: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let hex = format!(
            "{:08X}:1F90",
            u32::from_ne_bytes(Ipv4Addr::LOCALHOST.octets())
        );
        assert_eq!(parse_address(&hex), Some(v4));
        // ::ffff:127.0.0.1, as an IPv6 socket connected to an IPv4 listener shows it.
        let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets();
        let words: String = mapped
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect();
        assert_eq!(parse_address(&format!("{words}:1F90")), Some(v4));
        assert_eq!(parse_address("zz:1"), None);
    }

    #[test]
    fn reads_the_parent_of_a_command_with_parentheses() {
        assert_eq!(parent_in_stat("42 (a) b (c)) S 7 42 42 0"), Some(7));
    }

    /// The test's own connection to its own listener is found, and belongs to it.
    #[cfg(target_os = "linux")]
    #[test]
    fn finds_the_process_on_the_other_end() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let me = std::process::id();
        assert_eq!(identify(peer, addr, me), Peer::Instance);
        // spillway's own process is served whatever the instance's tree.
        let other = process_tree(me).into_iter().max().unwrap_or(me) + 1_000_000;
        assert_eq!(identify(peer, addr, other), Peer::Instance);
    }

    #[test]
    fn another_process_is_foreign_and_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A process of its own holds the client end: bash's /dev/tcp.
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec 3<>/dev/tcp/127.0.0.1/{}; sleep 5",
                addr.port()
            ))
            .spawn()
            .unwrap();
        let (_server, peer) = listener.accept().unwrap();
        let nobody = process_tree(std::process::id())
            .into_iter()
            .max()
            .unwrap_or(1)
            + 1_000_000;
        assert_eq!(
            identify(peer, addr, nobody),
            Peer::Foreign(Some(child.id()))
        );
        // The instance's own tree (here: the child itself) is served.
        assert_eq!(identify(peer, addr, child.id()), Peer::Instance);
        let _ = child.kill();
        let _ = child.wait();
    }
}
