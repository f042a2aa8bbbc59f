//! exploratory
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Transport};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

#[test]
fn explore() {
    let summary = std::fs::read_to_string(format!("{ROOT}/captures-summary.tsv")).unwrap();
    let mut lines = summary.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let name = f[col("capture")];
        let mut ports = vec![53u16];
        if f[col("mdns")] != "0" { ports.push(5353); }
        if f[col("llmnr")] != "0" { ports.push(5355); }
        if name.contains("dns-incomplete") { ports.push(5353); }
        for d in f.get(col("tshark_decode_as")).unwrap_or(&"").split_whitespace() {
            let p: u16 = d.split("==").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
            if !ports.contains(&p) { ports.push(p); }
        }
        let mut dec = PacketDecoder::new(PacketConfig { dns_ports: ports, ..Default::default() });
        let mut cap = pcap::Capture::from_file(format!("{ROOT}/captures/{name}")).unwrap();
        let lt = cap.get_datalink().0;
        let (mut u, mut t) = (0u64, 0u64);
        while let Ok(p) = cap.next_packet() {
            let ts = p.header.ts.tv_sec as i64 * 1_000_000 + p.header.ts.tv_usec as i64;
            dec.decode(lt, ts, p.data, |m| match m.transport { Transport::Udp => u += 1, Transport::Tcp => t += 1 });
        }
        let eu: u64 = f[col("udp_msgs")].parse().unwrap();
        let et: u64 = f[col("tcp_msgs")].parse().unwrap();
        let mark = if (u, t) == (eu, et) { "  " } else { "XX" };
        println!("{mark} {name} lt={lt} ours udp={u} tcp={t} tshark udp={eu} tcp={et} errors={:?} not_dns={}", dec.stats().errors, dec.stats().not_dns);
    }
}
