//! Information element identifiers.
//!
//! IPFIX ids follow the IANA "IPFIX Information Elements" registry (RFC 7012 §4 and
//! the registry it created); NetFlow v9 field type numbers follow RFC 3954 §8, which
//! uses the same numbers for the common elements below 128.

/// octetDeltaCount (IPFIX) / IN_BYTES (v9).
pub const OCTET_DELTA_COUNT: u16 = 1;
/// packetDeltaCount / IN_PKTS.
pub const PACKET_DELTA_COUNT: u16 = 2;
/// protocolIdentifier / PROTOCOL.
pub const PROTOCOL_IDENTIFIER: u16 = 4;
/// ipClassOfService / SRC_TOS.
pub const IP_CLASS_OF_SERVICE: u16 = 5;
/// tcpControlBits / TCP_FLAGS (IPFIX: unsigned16 per RFC 7125; v9: 1 byte).
pub const TCP_CONTROL_BITS: u16 = 6;
/// sourceTransportPort / L4_SRC_PORT.
pub const SOURCE_TRANSPORT_PORT: u16 = 7;
/// sourceIPv4Address / IPV4_SRC_ADDR.
pub const SOURCE_IPV4_ADDRESS: u16 = 8;
/// ingressInterface / INPUT_SNMP.
pub const INGRESS_INTERFACE: u16 = 10;
/// destinationTransportPort / L4_DST_PORT.
pub const DESTINATION_TRANSPORT_PORT: u16 = 11;
/// destinationIPv4Address / IPV4_DST_ADDR.
pub const DESTINATION_IPV4_ADDRESS: u16 = 12;
/// egressInterface / OUTPUT_SNMP.
pub const EGRESS_INTERFACE: u16 = 14;
/// flowEndSysUpTime / LAST_SWITCHED (v9 data records).
pub const LAST_SWITCHED: u16 = 21;
/// flowStartSysUpTime / FIRST_SWITCHED (v9 data records).
pub const FIRST_SWITCHED: u16 = 22;
/// sourceIPv6Address / IPV6_SRC_ADDR.
pub const SOURCE_IPV6_ADDRESS: u16 = 27;
/// destinationIPv6Address / IPV6_DST_ADDR.
pub const DESTINATION_IPV6_ADDRESS: u16 = 28;
/// icmpTypeCodeIPv4 / ICMP_TYPE (type * 256 + code).
pub const ICMP_TYPE_CODE_IPV4: u16 = 32;
/// samplingInterval / SAMPLING_INTERVAL.
pub const SAMPLING_INTERVAL: u16 = 34;
/// samplingAlgorithm / SAMPLING_ALGORITHM (1 deterministic, 2 random).
pub const SAMPLING_ALGORITHM: u16 = 35;
/// FLOW_SAMPLER_ID (v9, RFC 3954 §8; IPFIX samplerId, deprecated for selectorId 302): the
/// sampler a data record was selected by.
pub const FLOW_SAMPLER_ID: u16 = 48;
/// FLOW_SAMPLER_MODE (v9): 1 deterministic, 2 random.
pub const FLOW_SAMPLER_MODE: u16 = 49;
/// FLOW_SAMPLER_RANDOM_INTERVAL (v9): the N of 1-in-N.
pub const FLOW_SAMPLER_RANDOM_INTERVAL: u16 = 50;
/// exportedMessageTotalCount / TOTAL_PKTS_EXP.
pub const EXPORTED_MESSAGE_TOTAL_COUNT: u16 = 41;
/// exportedFlowRecordTotalCount / TOTAL_FLOWS_EXP.
pub const EXPORTED_FLOW_RECORD_TOTAL_COUNT: u16 = 42;
/// minimumTTL / MIN_TTL.
pub const MINIMUM_TTL: u16 = 52;
/// maximumTTL / MAX_TTL.
pub const MAXIMUM_TTL: u16 = 53;
/// sourceMacAddress / IN_SRC_MAC.
pub const SOURCE_MAC_ADDRESS: u16 = 56;
/// postDestinationMacAddress / OUT_DST_MAC (not used by the encoder; see 80).
pub const POST_DESTINATION_MAC_ADDRESS: u16 = 57;
/// vlanId / SRC_VLAN.
pub const VLAN_ID: u16 = 58;
/// ipVersion / IP_PROTOCOL_VERSION.
pub const IP_VERSION: u16 = 60;
/// flowDirection / DIRECTION (0 ingress, 1 egress).
pub const FLOW_DIRECTION: u16 = 61;
/// destinationMacAddress / IN_DST_MAC.
pub const DESTINATION_MAC_ADDRESS: u16 = 80;
/// interfaceName / IF_NAME.
pub const INTERFACE_NAME: u16 = 82;
/// interfaceDescription / IF_DESC.
pub const INTERFACE_DESCRIPTION: u16 = 83;
/// flowEndReason (RFC 7012).
pub const FLOW_END_REASON: u16 = 136;
/// icmpTypeCodeIPv6.
pub const ICMP_TYPE_CODE_IPV6: u16 = 139;
/// observationDomainId.
pub const OBSERVATION_DOMAIN_ID: u16 = 149;
/// flowStartMilliseconds (absolute, Unix epoch ms).
pub const FLOW_START_MILLISECONDS: u16 = 152;
/// flowEndMilliseconds (absolute, Unix epoch ms).
pub const FLOW_END_MILLISECONDS: u16 = 153;
/// ignoredPacketTotalCount.
pub const IGNORED_PACKET_TOTAL_COUNT: u16 = 164;
/// selectorId (RFC 5477 §8.1.1): identifies a selector (a sampling method and its
/// parameters) in the data records it selected and in the options that describe it.
pub const SELECTOR_ID: u16 = 302;
/// selectorAlgorithm (RFC 5477 §8.2.1).
pub const SELECTOR_ALGORITHM: u16 = 304;
/// samplingPacketInterval (RFC 5477).
pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
/// samplingPacketSpace (RFC 5477).
pub const SAMPLING_PACKET_SPACE: u16 = 306;
/// layer2SegmentId (VXLAN VNI / tunnel id).
pub const LAYER2_SEGMENT_ID: u16 = 351;

/// NetFlow v9 options scope field types (RFC 3954 §6.1).
pub mod v9_scope {
    /// System (we carry the source id).
    pub const SYSTEM: u16 = 1;
    /// Interface (we carry the ifIndex).
    pub const INTERFACE: u16 = 2;
    /// Line card.
    pub const LINE_CARD: u16 = 3;
    /// Cache.
    pub const CACHE: u16 = 4;
    /// Template.
    pub const TEMPLATE: u16 = 5;
}

/// IPFIX variable-length marker in a field specifier (RFC 7011 §7).
pub const VARIABLE_LENGTH: u16 = 65535;
