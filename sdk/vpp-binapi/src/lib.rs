//! VPP binary API message codecs, generated at build time from VPP 25.10's
//! message definitions (`vpp-api/`). Integers are big-endian, fixed
//! strings NUL-padded, variable arrays counted by an earlier field (written
//! from the array's length on encode).
//!
//! `encode` / `decode` cover a message's own fields; the transport adds
//! the `_vl_msg_id` / `client_index` / `context` header.

#![allow(non_upper_case_globals, non_camel_case_types, clippy::all)]

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Field-level wire coding.
pub trait Wire: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A VPP API message: its name, CRC and wire coding.
pub trait Message: Wire {
    const NAME: &'static str;
    const CRC: &'static str;

    /// `<name>_<crc>`, the key of the running VPP's message table.
    fn name_crc() -> String {
        format!("{}_{}", Self::NAME, Self::CRC)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.put(&mut out);
        out
    }

    /// Decodes the fields; trailing bytes are allowed (newer VPPs append).
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::get(&mut Reader::new(bytes))
    }
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

macro_rules! read_int {
    ($($t:ident),*) => {$(
        pub fn $t(&mut self) -> Result<$t, DecodeError> {
            Ok($t::from_be_bytes(self.bytes::<{ std::mem::size_of::<$t>() }>()?))
        }
    )*};
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                DecodeError(format!("message of {} bytes ends early", self.bytes.len()))
            })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub fn bytes<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    read_int!(u8, u16, u32, u64, i8, i16, i32, i64, f64);

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? != 0)
    }

    pub fn string(&mut self, len: usize) -> Result<String, DecodeError> {
        let field = self.take(len)?;
        let end = field.iter().position(|&b| b == 0).unwrap_or(len);
        Ok(String::from_utf8_lossy(&field[..end]).into_owned())
    }

    pub fn var_string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }
}

/// A NUL-terminated field of `len` bytes; longer text is cut at a
/// character boundary (VPP never gets half a UTF-8 sequence).
fn put_string(out: &mut Vec<u8>, text: &str, len: usize) {
    let mut n = text.len().min(len.saturating_sub(1));
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    out.extend_from_slice(&text.as_bytes()[..n]);
    out.resize(out.len() + len - n, 0);
}

fn put_var_string(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

include!(concat!(env!("OUT_DIR"), "/vpp_messages.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_too_long_for_its_field_is_cut_at_a_character() {
        // 'é' is two bytes; the 24-byte secret field holds 23 and a NUL.
        let m = MemifCreateV2 {
            secret: "é".repeat(20),
            ..Default::default()
        };
        let back = MemifCreateV2::decode(&m.encode()).unwrap();
        assert_eq!(
            back.secret,
            "é".repeat(11),
            "found by the vpp_messages fuzz target"
        );
    }

    #[test]
    fn memif_create_v2_has_vpps_wire_layout() {
        let m = MemifCreateV2 {
            role: memif_role::MEMIF_ROLE_API_MASTER,
            mode: memif_mode::MEMIF_MODE_API_ETHERNET,
            rx_queues: 1,
            tx_queues: 1,
            id: 0x01020304,
            socket_id: 5,
            ring_size: 1024,
            buffer_size: 2048,
            no_zero_copy: false,
            use_dma: false,
            hw_addr: [2, 0, 0, 0, 0, 1],
            secret: "s".into(),
        };
        let bytes = m.encode();
        // role u32, mode u32, rx u8, tx u8, id u32, socket_id u32,
        // ring_size u32, buffer_size u16, 2 bools, mac[6], secret[24]
        assert_eq!(bytes.len(), 4 + 4 + 1 + 1 + 4 + 4 + 4 + 2 + 1 + 1 + 6 + 24);
        assert_eq!(&bytes[10..14], &[1, 2, 3, 4]);
        assert_eq!(&bytes[22..24], &2048u16.to_be_bytes());
        assert_eq!(bytes[32], b's');
        assert_eq!(MemifCreateV2::decode(&bytes).unwrap(), m);
        assert_eq!(MemifCreateV2::name_crc(), "memif_create_v2_8c7de5f7");
    }

    #[test]
    fn counted_arrays_take_their_count_from_the_vector() {
        let reply = SockclntCreateReply {
            response: 0,
            index: 9,
            count: 0,
            message_table: vec![
                MessageTableEntry {
                    index: 16,
                    name: "a_1".into(),
                },
                MessageTableEntry {
                    index: 17,
                    name: "b_2".into(),
                },
            ],
        };
        let bytes = reply.encode();
        assert_eq!(&bytes[8..10], &2u16.to_be_bytes());
        let back = SockclntCreateReply::decode(&bytes).unwrap();
        assert_eq!(back.message_table, reply.message_table);
        assert_eq!(back.count, 2);
    }

    #[test]
    fn short_messages_are_errors_not_panics() {
        let bytes = MemifCreateV2::default().encode();
        for cut in 0..bytes.len() {
            assert!(MemifCreateV2::decode(&bytes[..cut]).is_err());
        }
        assert!(SockclntCreateReply::decode(&[0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff]).is_err());
    }
}
