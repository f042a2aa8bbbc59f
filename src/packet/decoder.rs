//! (in progress)
#[derive(Clone, Debug, Default)]
pub struct PacketConfig;
#[derive(Clone, Debug, Default)]
pub struct PacketStats;
pub struct PacketDecoder;
