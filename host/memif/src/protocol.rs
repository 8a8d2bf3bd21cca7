//! The memif control messages (protocol 2.0).
//!
//! Every message is exactly 128 bytes: a little-endian u16 type at offset
//! 0, a packed little-endian payload from offset 2, zero padding. At most
//! one file descriptor travels with a message (SCM_RIGHTS). The decoder
//! accepts any 128 bytes and never panics: peers are not trusted.

pub const MESSAGE_SIZE: usize = 128;
pub const NAME_SIZE: usize = 32;
pub const SECRET_SIZE: usize = 24;
pub const REASON_SIZE: usize = 96;

/// The interface mode agreed in INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ethernet,
    Ip,
    PuntInject,
}

impl Mode {
    fn to_wire(self) -> u8 {
        match self {
            Mode::Ethernet => 0,
            Mode::Ip => 1,
            Mode::PuntInject => 2,
        }
    }

    fn from_wire(value: u8) -> Result<Mode, DecodeError> {
        match value {
            0 => Ok(Mode::Ethernet),
            1 => Ok(Mode::Ip),
            2 => Ok(Mode::PuntInject),
            other => Err(DecodeError::BadMode(other)),
        }
    }
}

/// ADD_RING flag: the ring carries client-to-server ("slave to master") frames.
pub const RING_FLAG_S2M: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Ack,
    Hello {
        name: String,
        min_version: u16,
        max_version: u16,
        max_region: u16,
        max_m2s_ring: u16,
        max_s2m_ring: u16,
        max_log2_ring_size: u8,
    },
    Init {
        version: u16,
        id: u32,
        mode: Mode,
        secret: String,
        name: String,
    },
    AddRegion {
        index: u16,
        size: u64,
    },
    AddRing {
        flags: u16,
        index: u16,
        region: u16,
        offset: u32,
        log2_ring_size: u8,
        private_hdr_size: u16,
    },
    Connect {
        if_name: String,
    },
    Connected {
        if_name: String,
    },
    Disconnect {
        code: u32,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {0} bytes (memif messages are 128)")]
    BadLength(usize),
    #[error("unknown message type {0}")]
    BadType(u16),
    #[error("unknown interface mode {0}")]
    BadMode(u8),
}

impl Message {
    /// The message's name, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Ack => "ACK",
            Message::Hello { .. } => "HELLO",
            Message::Init { .. } => "INIT",
            Message::AddRegion { .. } => "ADD_REGION",
            Message::AddRing { .. } => "ADD_RING",
            Message::Connect { .. } => "CONNECT",
            Message::Connected { .. } => "CONNECTED",
            Message::Disconnect { .. } => "DISCONNECT",
        }
    }

    pub fn encode(&self) -> [u8; MESSAGE_SIZE] {
        let mut w = Writer {
            buf: [0; MESSAGE_SIZE],
        };
        match self {
            Message::Ack => w.u16(0, 1),
            Message::Hello {
                name,
                min_version,
                max_version,
                max_region,
                max_m2s_ring,
                max_s2m_ring,
                max_log2_ring_size,
            } => {
                w.u16(0, 2);
                w.text(2, NAME_SIZE, name);
                w.u16(34, *min_version);
                w.u16(36, *max_version);
                w.u16(38, *max_region);
                w.u16(40, *max_m2s_ring);
                w.u16(42, *max_s2m_ring);
                w.buf[44] = *max_log2_ring_size;
            }
            Message::Init {
                version,
                id,
                mode,
                secret,
                name,
            } => {
                w.u16(0, 3);
                w.u16(2, *version);
                w.u32(4, *id);
                w.buf[8] = mode.to_wire();
                w.text(9, SECRET_SIZE, secret);
                w.text(33, NAME_SIZE, name);
            }
            Message::AddRegion { index, size } => {
                w.u16(0, 4);
                w.u16(2, *index);
                w.buf[4..12].copy_from_slice(&size.to_le_bytes());
            }
            Message::AddRing {
                flags,
                index,
                region,
                offset,
                log2_ring_size,
                private_hdr_size,
            } => {
                w.u16(0, 5);
                w.u16(2, *flags);
                w.u16(4, *index);
                w.u16(6, *region);
                w.u32(8, *offset);
                w.buf[12] = *log2_ring_size;
                w.u16(13, *private_hdr_size);
            }
            Message::Connect { if_name } => {
                w.u16(0, 6);
                w.text(2, NAME_SIZE, if_name);
            }
            Message::Connected { if_name } => {
                w.u16(0, 7);
                w.text(2, NAME_SIZE, if_name);
            }
            Message::Disconnect { code, reason } => {
                w.u16(0, 8);
                w.u32(2, *code);
                w.text(6, REASON_SIZE, reason);
            }
        }
        w.buf
    }

    /// Decodes one message; any input gives a message or an error.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let b: &[u8; MESSAGE_SIZE] = bytes
            .try_into()
            .map_err(|_| DecodeError::BadLength(bytes.len()))?;
        let u16_at = |at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let text = |at: usize, len: usize| {
            let field = &b[at..at + len];
            let end = field.iter().position(|&c| c == 0).unwrap_or(len);
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        Ok(match u16_at(0) {
            1 => Message::Ack,
            2 => Message::Hello {
                name: text(2, NAME_SIZE),
                min_version: u16_at(34),
                max_version: u16_at(36),
                max_region: u16_at(38),
                max_m2s_ring: u16_at(40),
                max_s2m_ring: u16_at(42),
                max_log2_ring_size: b[44],
            },
            3 => Message::Init {
                version: u16_at(2),
                id: u32_at(4),
                mode: Mode::from_wire(b[8])?,
                secret: text(9, SECRET_SIZE),
                name: text(33, NAME_SIZE),
            },
            4 => Message::AddRegion {
                index: u16_at(2),
                size: u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
            },
            5 => Message::AddRing {
                flags: u16_at(2),
                index: u16_at(4),
                region: u16_at(6),
                offset: u32_at(8),
                log2_ring_size: b[12],
                private_hdr_size: u16_at(13),
            },
            6 => Message::Connect {
                if_name: text(2, NAME_SIZE),
            },
            7 => Message::Connected {
                if_name: text(2, NAME_SIZE),
            },
            8 => Message::Disconnect {
                code: u32_at(2),
                reason: text(6, REASON_SIZE),
            },
            other => return Err(DecodeError::BadType(other)),
        })
    }
}

struct Writer {
    buf: [u8; MESSAGE_SIZE],
}

impl Writer {
    fn u16(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, at: usize, v: u32) {
        self.buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    /// A NUL-padded text field; longer text is cut to the field, at a
    /// character boundary so the peer never gets half a UTF-8 sequence.
    fn text(&mut self, at: usize, len: usize, text: &str) {
        let mut n = text.len().min(len);
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[at..at + n].copy_from_slice(&text.as_bytes()[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_too_long_for_its_field_is_cut_at_a_character() {
        let hello = Message::Hello {
            // 1 + 2 * NAME_SIZE bytes: the field ends inside an 'é'.
            name: format!("a{}", "é".repeat(NAME_SIZE)),
            min_version: 0x200,
            max_version: 0x200,
            max_region: 1,
            max_m2s_ring: 1,
            max_s2m_ring: 1,
            max_log2_ring_size: 14,
        };
        // Found by the memif_control fuzz target: half a character was sent.
        match Message::decode(&hello.encode()).unwrap() {
            Message::Hello { name, .. } => {
                assert_eq!(name, format!("a{}", "é".repeat(NAME_SIZE / 2 - 1)))
            }
            other => panic!("{other:?}"),
        }
    }

    fn samples() -> Vec<Message> {
        vec![
            Message::Ack,
            Message::Hello {
                name: "DPDK 22.11".into(),
                min_version: 0x200,
                max_version: 0x200,
                max_region: 255,
                max_m2s_ring: 1,
                max_s2m_ring: 0,
                max_log2_ring_size: 14,
            },
            Message::Init {
                version: 0x200,
                id: 7,
                mode: Mode::Ethernet,
                secret: "s3cret".into(),
                name: "app".into(),
            },
            Message::AddRegion {
                index: 0,
                size: 1 << 30,
            },
            Message::AddRing {
                flags: RING_FLAG_S2M,
                index: 1,
                region: 0,
                offset: 16512,
                log2_ring_size: 10,
                private_hdr_size: 0,
            },
            Message::Connect {
                if_name: "memif0".into(),
            },
            Message::Connected {
                if_name: "net1".into(),
            },
            Message::Disconnect {
                code: 1,
                reason: "incorrect secret".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(Message::decode(&m.encode()), Ok(m.clone()), "{}", m.kind());
        }
    }

    #[test]
    fn wire_offsets_match_dpdk() {
        let init = Message::Init {
            version: 0x200,
            id: 0x01020304,
            mode: Mode::Ethernet,
            secret: "ab".into(),
            name: "n".into(),
        }
        .encode();
        assert_eq!(&init[0..2], &[3, 0]);
        assert_eq!(&init[2..4], &[0, 2]);
        assert_eq!(&init[4..8], &[4, 3, 2, 1]);
        assert_eq!(init[8], 0);
        assert_eq!(&init[9..11], b"ab");
        assert_eq!(init[33], b'n');
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // A deterministic sweep of malformed inputs: wrong lengths, every
        // type value, random payloads, over-long unterminated strings.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [0, 1, 2, 127, 129, 4096] {
            assert!(Message::decode(&vec![0xff; len]).is_err());
        }
        for _ in 0..20_000 {
            let mut buf = [0u8; MESSAGE_SIZE];
            for byte in buf.iter_mut() {
                *byte = next() as u8;
            }
            buf[0] = (next() % 10) as u8;
            buf[1] = 0;
            let _ = Message::decode(&buf);
        }
        assert_eq!(
            Message::decode(&[9u8; MESSAGE_SIZE]),
            Err(DecodeError::BadType(0x0909))
        );
    }
}
