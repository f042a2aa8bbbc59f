//! Helpers shared by the dnstap tests: dnstap frames made from the DNS
//! payloads of a real pcap capture (through the crate's own packet
//! decoder), so a dnstap run can be compared with the pcap run of the same
//! traffic.
#![allow(dead_code)]

use std::path::Path;

use dnsmonitor::dnstap::message::{Dnstap, Message};
use dnsmonitor::packet::{PacketConfig, PacketDecoder, Payload, Transport};
use prost::Message as _;

fn addr(ip: std::net::IpAddr) -> Vec<u8> {
    match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The CLIENT_QUERY or CLIENT_RESPONSE dnstap frame a resolver would log
/// for this payload (the query side is the client).
pub fn client_frame(p: &Payload<'_>) -> Vec<u8> {
    let response = p.data.get(2).is_some_and(|b| b & 0x80 != 0);
    let (client, cport, server, sport) = if response {
        (p.dst, p.dport, p.src, p.sport)
    } else {
        (p.src, p.sport, p.dst, p.dport)
    };
    let sec = p.ts_us.div_euclid(1_000_000) as u64;
    let nsec = (p.ts_us.rem_euclid(1_000_000) * 1000) as u32;
    let m = Message {
        r#type: if response { 6 } else { 5 },
        socket_family: Some(if client.is_ipv4() { 1 } else { 2 }),
        socket_protocol: Some(match p.transport {
            Transport::Udp => 1,
            Transport::Tcp => 2,
        }),
        query_address: Some(addr(client)),
        response_address: Some(addr(server)),
        query_port: Some(cport.into()),
        response_port: Some(sport.into()),
        query_time_sec: (!response).then_some(sec),
        query_time_nsec: (!response).then_some(nsec),
        query_message: (!response).then(|| p.data.to_vec()),
        response_time_sec: response.then_some(sec),
        response_time_nsec: response.then_some(nsec),
        response_message: response.then(|| p.data.to_vec()),
    };
    Dnstap {
        identity: Some(b"test-resolver".to_vec()),
        version: Some(b"dnsmonitor tests".to_vec()),
        extra: None,
        message: Some(m),
        r#type: 1,
    }
    .encode_to_vec()
}

/// The dnstap frames of every DNS payload of a pcap file, in order.
pub fn frames_of_pcap(path: &Path) -> Vec<Vec<u8>> {
    let mut cap = pcap::Capture::from_file(path).expect("open capture");
    let lt = cap.get_datalink().0;
    let mut dec = PacketDecoder::new(PacketConfig::default());
    let mut out = Vec::new();
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts.tv_sec * 1_000_000 + p.header.ts.tv_usec;
        dec.decode(lt, ts, p.data, |payload| out.push(client_frame(payload)));
    }
    out
}
